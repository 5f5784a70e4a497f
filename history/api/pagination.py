"""Cursor pagination by default (stable while new rows arrive, no count at all), and
page-number pagination on request (`?page=N`) for UIs, whose total is counted only up to
API_COUNT_CAP rows."""

from collections.abc import Sequence
from typing import Any, cast

from django.conf import settings
from django.core.paginator import Page
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from history.pagination import CappedCountPaginator


def _strict_page_size(request: Request, query_param: str, default: int, maximum: int) -> int:
    """The requested page size, capped at `maximum`; anything but a positive integer is a
    400 rather than silently replaced."""
    raw = request.query_params.getlist(query_param)
    if not raw:
        return default
    if len(raw) > 1 or not raw[0].isdigit() or int(raw[0]) < 1:
        raise ValidationError({query_param: ["Must be a positive whole number."]})
    return min(int(raw[0]), maximum)


def _bounded_parameters(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Say in the schema what _strict_page_size and the pages accept."""
    for parameter in parameters:
        if parameter["name"] in ("page_size", "page"):
            parameter["schema"] = {**parameter["schema"], "minimum": 1}
    return parameters


class CappedPageNumberPagination(PageNumberPagination):
    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
    django_paginator_class = CappedCountPaginator

    def get_page_size(self, request: Request) -> int:
        return _strict_page_size(request, "page_size", self.page_size, self.max_page_size)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return _bounded_parameters(super().get_schema_operation_parameters(view))

    def get_paginated_response(self, data: Any) -> Response:
        page = cast(Page[Any], self.page)  # set by paginate_queryset, which runs first
        count = page.paginator.count
        capped = count > settings.API_COUNT_CAP
        return Response(
            {
                "count": min(count, settings.API_COUNT_CAP),
                "count_is_capped": capped,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count_is_capped"] = {
            "type": "boolean",
            "description": f"True when there are more than {settings.API_COUNT_CAP} rows.",
        }
        return response


class NewestFirstCursorPagination(CursorPagination):
    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
    ordering = "-created_at"

    def get_page_size(self, request: Request) -> int:
        return _strict_page_size(request, "page_size", self.page_size, self.max_page_size)


class HistoryPagination(BasePagination):
    """Cursor pagination unless the request asks for `page`."""

    def __init__(self) -> None:
        self.cursor = NewestFirstCursorPagination()
        self.numbered = CappedPageNumberPagination()
        self.active: BasePagination = self.cursor

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self.active = self.numbered if "page" in request.query_params else self.cursor
        return self.active.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        return self.active.get_paginated_response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        cursor = self.cursor.get_paginated_response_schema(schema)
        cursor["properties"].update(
            self.numbered.get_paginated_response_schema(schema)["properties"]
        )
        cursor["required"] = ["results"]
        cursor["description"] = (
            "Cursor pages (next/previous) by default; with ?page=N also count and count_is_capped."
        )
        return cursor

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        page = {
            "name": "page",
            "required": False,
            "in": "query",
            "description": "Page number: switches to numbered pages with a capped count.",
            "schema": {"type": "integer"},
        }
        return _bounded_parameters([*self.cursor.get_schema_operation_parameters(view), page])
