from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from history.models import ApiKey
from history.services import api_key_revoke

if TYPE_CHECKING:
    # ModelAdmin is generic only in django-stubs (django_stubs_ext.monkeypatch() is not run).
    ApiKeyModelAdmin = admin.ModelAdmin[ApiKey]
else:
    ApiKeyModelAdmin = admin.ModelAdmin


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: ApiKeyModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ApiKeyModelAdmin):
    """Staff look keys up and revoke them. Keys are created by their owners (account page
    or API), so the raw key is never shown here; and every field is read-only, since moving
    a key to another user would hand that user's access to whoever holds the key."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at", "active"]
    list_filter = [ApiKeyStatusFilter, "created_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    # The unfiltered total is an extra COUNT(*) over the whole table on every page.
    show_full_result_count = False
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "key_hash",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = readonly_fields
    actions = ["revoke_keys"]

    @admin.display(boolean=True, description="Active", ordering="revoked_at")
    def active(self, api_key: ApiKey) -> bool:
        return api_key.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            self.log_change(request, api_key, "Revoked")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key{'' if revoked == 1 else 's'}.")
