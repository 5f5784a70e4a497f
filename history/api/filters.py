"""The API's ordering of generation lists (the filters themselves are shared with the
pages: `history.filters`)."""

from typing import Any

from django.db.models import QuerySet
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.views import APIView


class GenerationOrderingFilter(OrderingFilter):
    """Ordering by generation time leaves out generations that have none yet: cursor pages
    cannot step over NULLs."""

    ordering_fields = ["created_at", "generation_time_seconds", "actual_cost"]

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any], view: APIView
    ) -> QuerySet[Any]:
        ordering = self.get_ordering(request, queryset, view) or []
        if any(field.lstrip("-") == "generation_time_seconds" for field in ordering):
            queryset = queryset.filter(generation_time_seconds__isnull=False)
        return super().filter_queryset(request, queryset, view)
