"""What every admin of the package shares: the ModelAdmin types (generic only in
django-stubs) and read-only pages."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

from generations.models import Generation, Item, Variant

if TYPE_CHECKING:
    AnyModelAdmin = admin.ModelAdmin[Any]
    GenerationModelAdmin = admin.ModelAdmin[Generation]
    VariantModelAdmin = admin.ModelAdmin[Variant]
    ItemModelAdmin = admin.ModelAdmin[Item]
    VariantTabularInline = admin.TabularInline[Variant, Generation]
    # A mixin's base: a ModelAdmin to the type checker, so that its super() calls are
    # checked; a plain class at run time, so that it can sit before any ModelAdmin.
    AdminMixinBase = admin.ModelAdmin[Any]
else:
    AnyModelAdmin = GenerationModelAdmin = VariantModelAdmin = ItemModelAdmin = admin.ModelAdmin
    VariantTabularInline = admin.TabularInline
    AdminMixinBase = object


class ReadOnlyAdminMixin:
    """No add, no Django delete, and change pages that only show: the object's change
    permission is refused, so Django renders its view-only page and refuses a POST."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Without an object this is the model-level check that actions ask.
        return obj is None and super().has_change_permission(request)  # type: ignore[misc]
