"""What keeps the admin lists fast on tables of millions of rows: a paginator that never
counts a whole table, the settings every large-table admin shares (LargeTableAdminMixin),
and a changelist that annotates thumbnails in the page query and draws its date hierarchy
from one Min/Max."""

import calendar
import datetime
from functools import cached_property
from typing import Any, ClassVar
from uuid import UUID

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.text import capfirst

from generations.admin.base import AdminMixinBase
from generations.selectors import capped_count, generation_with_thumbnail


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


class LargeTableAdminMixin(AdminMixinBase):
    """An admin over a table of millions of rows: no COUNT(*) over the whole table (not
    for the page count, not for the unfiltered total), no facet counts, pages of 50, no
    sortable column unless the admin names one that an index serves, and ids looked up
    by primary key.

    The change page loads its object with the relations named in `object_select_related`,
    in one query; a malformed id finds no object (Django's "does not exist" redirect).
    A search term that is an id goes to `search_by_id`; any other to `search_by_text`,
    which finds nothing unless the admin says which index serves it."""

    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    sortable_by: ClassVar[list[str] | tuple[str, ...] | None] = ()
    object_select_related: tuple[str, ...] = ()

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        queryset = self.get_queryset(request)
        if self.object_select_related:
            # select_related() without names would follow every foreign key.
            queryset = queryset.select_related(*self.object_select_related)
        try:
            return queryset.get(pk=self.opts.pk.to_python(object_id))
        except (self.model.DoesNotExist, ValidationError, ValueError):
            return None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        found = parse_uuid(term)
        if found is not None:
            return self.search_by_id(queryset, found), False
        return self.search_by_text(queryset, term), False

    def search_by_id(self, queryset: QuerySet[Any], found: UUID) -> QuerySet[Any]:
        return queryset.filter(pk=found)

    def search_by_text(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.none()


class GenerationChangeList(ChangeList):
    """The page query carries each row's thumbnail key (one subquery per row of the page,
    not a query per row), and the date hierarchy costs one Min/Max query at most."""

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: list[str | None] | None = None
    ) -> QuerySet[Any]:
        return generation_with_thumbnail(super().get_queryset(request, exclude_parameters))

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
