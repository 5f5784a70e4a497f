"""What keeps the generations admin lists fast on large tables: a paginator that never
counts a whole table, a changelist that annotates thumbnails in the page query and draws
its date hierarchy from one Min/Max, and list filters whose choices cost no query."""

import calendar
import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from generations.errors import ErrorCode
from generations.models import Generation
from generations.providers import PROVIDERS
from generations.selectors import capped_count, with_thumbnail
from generations.states import ItemStatus

if TYPE_CHECKING:
    AnyModelAdmin = admin.ModelAdmin[Any]
else:
    AnyModelAdmin = admin.ModelAdmin


def parse_uuid(term: str) -> UUID | None:
    """The id a search term spells, if it is one."""
    try:
        return UUID(term.strip())
    except ValueError:
        return None


def table_row_estimate(queryset: QuerySet[Any]) -> int | None:
    """PostgreSQL's own estimate of the rows in the queryset's table (kept by ANALYZE and
    autovacuum), or None elsewhere or before the table was first analyzed."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Never runs COUNT(*) over a whole table. Unfiltered, a large table's size is the
    planner's estimate; filtered (or small), rows are counted up to API_COUNT_CAP + 1,
    like the API's CappedCountPaginator. The flags tell the page which one it shows."""

    count_is_estimate = False
    count_is_capped = False

    @property
    def count_cap(self) -> int:
        return int(settings.API_COUNT_CAP)

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if not isinstance(object_list, QuerySet):
            return len(object_list)
        if not object_list.query.where:
            estimate = table_row_estimate(object_list)
            if estimate is not None and estimate > self.count_cap:
                self.count_is_estimate = True
                return estimate
        counted = capped_count(object_list, self.count_cap)
        self.count_is_capped = counted > self.count_cap
        return counted


class GenerationChangeList(ChangeList):
    """The page query carries each row's thumbnail key (one subquery per row of the page,
    not a query per row), and the date hierarchy costs one Min/Max query at most."""

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: list[str | None] | None = None
    ) -> QuerySet[Any]:
        return with_thumbnail(super().get_queryset(request, exclude_parameters))

    @cached_property
    def date_links(self) -> dict[str, Any]:
        """The links of Django's date hierarchy (same parameters, same template), computed
        from the first and last dates of the whole table instead of a DISTINCT over the
        filtered rows: two reads at the ends of the created_at index, whatever the filters
        (a Min/Max under a rare filter can make PostgreSQL walk the index end to end).
        Every year, month and day between them is listed, with or without rows."""
        name = str(self.date_hierarchy)
        parts = [self.params.get(f"{name}__{unit}") for unit in ("year", "month", "day")]
        try:
            year, month, day = (int(part) if part else None for part in parts)
            if year and month:
                datetime.date(year, month, day or 1)
        except ValueError:
            return {"show": False}

        def link(filters: dict[str, Any]) -> str:
            return self.get_query_string(filters, [f"{name}__"])

        today = timezone.localdate()
        if year is None:
            bounds = self.root_queryset.order_by().aggregate(first=Min(name), last=Max(name))
            if bounds["first"] is None:
                return {"show": False}
            first = timezone.localdate(bounds["first"])
            last = timezone.localdate(bounds["last"])
            if first.year != last.year:
                years = range(first.year, last.year + 1)
                choices = [{"link": link({f"{name}__year": y}), "title": str(y)} for y in years]
                return {"show": True, "back": None, "choices": choices}
            if first.month != last.month:
                return self._months(link, first.year, range(first.month, last.month + 1), None)
            return self._days(link, first.year, first.month, range(first.day, last.day + 1), None)
        back_all = {"link": link({}), "title": "All dates"}
        if month is None:
            last_month = today.month if year == today.year else 12
            return self._months(link, year, range(1, last_month + 1), back_all)
        if day is None:
            days_in_month = calendar.monthrange(year, month)[1]
            last_day = today.day if (year, month) == (today.year, today.month) else days_in_month
            back = {"link": link({f"{name}__year": year}), "title": str(year)}
            return self._days(link, year, month, range(1, last_day + 1), back)
        date = datetime.date(year, month, day)
        return {
            "show": True,
            "back": {
                "link": link({f"{name}__year": year, f"{name}__month": month}),
                "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
        }

    def _months(
        self, link: Any, year: int, months: range, back: dict[str, str] | None
    ) -> dict[str, Any]:
        name = str(self.date_hierarchy)
        choices = [
            {
                "link": link({f"{name}__year": year, f"{name}__month": m}),
                "title": capfirst(
                    formats.date_format(datetime.date(year, m, 1), "YEAR_MONTH_FORMAT")
                ),
            }
            for m in months
        ]
        return {"show": True, "back": back, "choices": choices}

    def _days(
        self, link: Any, year: int, month: int, days: range, back: dict[str, str] | None
    ) -> dict[str, Any]:
        name = str(self.date_hierarchy)
        choices = [
            {
                "link": link({f"{name}__year": year, f"{name}__month": month, f"{name}__day": d}),
                "title": capfirst(
                    formats.date_format(datetime.date(year, month, d), "MONTH_DAY_FORMAT")
                ),
            }
            for d in days
        ]
        return {"show": True, "back": back, "choices": choices}


# List filters. Their choices come from code (choices, the provider registry), never from
# a DISTINCT over the table.


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


class ProviderFilter(admin.SimpleListFilter):
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in sorted(PROVIDERS)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(provider=value) if value else queryset


class HasFailuresFilter(admin.SimpleListFilter):
    title = "has failures"
    parameter_name = "has_failures"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "With failed items"), ("no", "Without failed items")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(failed_items__gt=0)
        if self.value() == "no":
            return queryset.filter(failed_items=0)
        return queryset


class TrashFilter(admin.SimpleListFilter):
    """Staff see soft-deleted generations too; this narrows the list to either side."""

    title = "trash"
    parameter_name = "trash"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [("in", "In trash"), ("out", "Not in trash")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "in":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "out":
            return queryset.filter(deleted_at__isnull=True)
        return queryset


class ErrorCodeFilter(admin.SimpleListFilter):
    title = "error code"
    parameter_name = "error_code"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [(code.value, code.value) for code in ErrorCode]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(error_code=value) if value else queryset


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
    """Items processing for longer than ITEM_LEASE_SECONDS, as on the dashboard; the
    partial index on processing items serves it."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: AnyModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Processing past the lease")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "yes":
            return queryset
        lease_start = timezone.now() - datetime.timedelta(seconds=settings.ITEM_LEASE_SECONDS)
        return queryset.filter(status=ItemStatus.PROCESSING, started_at__lt=lease_start)
