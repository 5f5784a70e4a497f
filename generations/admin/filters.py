"""The list filters of the generations admin. Their choices come from code (choices, the
provider registry), never from a DISTINCT over the table."""

import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString

from generations.admin.base import AnyModelAdmin
from generations.errors import ErrorCode
from generations.models import Generation
from generations.providers import PROVIDERS
from generations.states import ItemStatus


class OwnerFilter(admin.SimpleListFilter):
    """`?owner__id__exact=<user id>`, picked with Django's own autocomplete widget, which
    searches users through the User admin's search_fields (so it needs the view permission
    on users; the owner's username can also be typed in the search box)."""

    title = "owner"
    parameter_name = "owner__id__exact"
    template = "admin/generations/filter_autocomplete.html"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        self.admin_site = model_admin.admin_site
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        try:
            return queryset.filter(owner_id=int(value))
        except ValueError:
            raise IncorrectLookupParameters(f"Not a user id: {value!r}") from None

    def choices(self, changelist: ChangeList) -> Any:
        # The filter's form resubmits every other parameter of the current list.
        self.kept_params = sorted(
            (key, value) for key, value in changelist.params.items() if key != self.parameter_name
        )
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }

    def select(self) -> SafeString:
        """The autocomplete <select>; one query for the chosen owner's name, if any."""
        widget = AutocompleteSelect(
            Generation._meta.get_field("owner"),
            self.admin_site,
            attrs={"id": "gv-owner-filter", "style": "width: 100%"},
        )
        field = forms.ModelChoiceField(
            queryset=User.objects.only("id", "username"), required=False, widget=widget
        )
        html: SafeString = field.widget.render(self.parameter_name, self.value(), renderer=None)
        return html

    @staticmethod
    def media() -> forms.Media:
        return AutocompleteSelect(Generation._meta.get_field("owner"), admin.site).media


class ValueFilter(admin.SimpleListFilter):
    """`?<parameter_name>=<value>`: the rows whose column of that name holds the value,
    one of those that `values` lists."""

    def values(self) -> list[str]:
        return []

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [(value, value) for value in self.values()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset


class ProviderFilter(ValueFilter):
    title = "provider"
    parameter_name = "provider"

    def values(self) -> list[str]:
        return sorted(PROVIDERS)


class ConditionFilter(admin.SimpleListFilter):
    """A filter whose every choice stands for a fixed condition: `conditions` maps each
    parameter value to its label and the Q it filters by."""

    conditions: dict[str, tuple[str, Q]] = {}

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _) in self.conditions.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        choice = self.conditions.get(self.value() or "")
        return queryset if choice is None else queryset.filter(choice[1])


class HasFailuresFilter(ConditionFilter):
    title = "has failures"
    parameter_name = "has_failures"
    conditions = {
        "yes": ("With failed items", Q(failed_items__gt=0)),
        "no": ("Without failed items", Q(failed_items=0)),
    }


class TrashFilter(ConditionFilter):
    """Staff see soft-deleted generations too; this narrows the list to either side."""

    title = "trash"
    parameter_name = "trash"
    conditions = {
        "in": ("In trash", Q(deleted_at__isnull=False)),
        "out": ("Not in trash", Q(deleted_at__isnull=True)),
    }


class ErrorCodeFilter(ValueFilter):
    title = "error code"
    parameter_name = "error_code"

    def values(self) -> list[str]:
        return [code.value for code in ErrorCode]


class FailedWithCodeFilter(ErrorCodeFilter):
    """Items that failed with a given code. Limited to failed items (a retried or
    cancelled item carries a code too) so that a partial index on failed items'
    (error_code, completed_at) can serve it; a rare code is otherwise a scan of the
    largest table."""

    title = "failed with code"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(status=ItemStatus.FAILED, error_code=value)


class StuckFilter(admin.SimpleListFilter):
    """Items processing whose worker has said nothing for ITEM_LEASE_SECONDS, as on the
    dashboard; the partial index on processing items serves it."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Worker silent past the lease")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "yes":
            return queryset
        lease_start = timezone.now() - datetime.timedelta(seconds=settings.ITEM_LEASE_SECONDS)
        return queryset.filter(status=ItemStatus.PROCESSING, heartbeat_at__lt=lease_start)
