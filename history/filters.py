"""Filters of the generation lists, shared by the API and the pages. Search matches
title, prompt and source URL; on PostgreSQL the trigram indexes of migration
generations.0003 serve terms of three or more characters, and shorter terms only ever
scan the requesting user's rows (through the owner index), never the table."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from generations.kinds import GenerationKind
from generations.models import Generation, Variant
from generations.states import GenerationStatus

MAX_SEARCH_LENGTH = 200


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time, compared in UTC: PostgreSQL refuses offsets beyond ±15:59,
    which ISO 8601 allows."""

    def filter(self, qs: QuerySet[Any], value: datetime | None) -> QuerySet[Any]:
        if value is not None and value.tzinfo is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:  # a date so close to year 1 or 9999 that UTC leaves the range
                raise ValidationError({self.field_name: ["Date out of range."]}) from None
        filtered: QuerySet[Any] = super().filter(qs, value)
        return filtered


class CommaSeparatedChoiceFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """`?status=failed,partial_success` as well as a single value."""


class GenerationFilter(django_filters.FilterSet):
    status = CommaSeparatedChoiceFilter(
        choices=GenerationStatus.choices, help_text="One or more statuses, comma-separated."
    )
    kind = django_filters.ChoiceFilter(choices=GenerationKind.choices)
    variant = django_filters.CharFilter(
        method="filter_variant", help_text="Generations that have a variant with this label."
    )
    provider = django_filters.CharFilter()
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    # true/false only: a BooleanFilter would read anything else as "no filter".
    has_failures = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_has_failures",
        help_text="Only generations with (true) or without failed items.",
    )
    parent = django_filters.UUIDFilter(
        field_name="parent_id", help_text="Regenerations of this generation."
    )
    q = django_filters.CharFilter(
        method="filter_search",
        max_length=MAX_SEARCH_LENGTH,
        help_text="Search in title, prompt and source URL.",
    )

    # Typed filters given with an empty value are an error, not "no filter": API clients
    # send what they mean, and the pages leave empty fields out.
    NOT_BLANK = ("kind", "created_after", "created_before", "has_failures", "parent")

    class Meta:
        model = Generation
        fields = ["status", "kind", "provider", "parent"]

    def is_valid(self) -> bool:
        valid: bool = super().is_valid()
        for name in self.NOT_BLANK:
            if name in self.data and not str(self.data.get(name, "")).strip():
                self.form.add_error(name, "May not be blank; leave the parameter out instead.")
                valid = False
        return valid

    def filter_variant(
        self, queryset: QuerySet[Generation], name: str, value: str
    ) -> QuerySet[Generation]:
        return queryset.filter(
            Exists(
                Variant.objects.filter(generation_id=OuterRef("id"), label=value.strip().lower())
            )
        )

    @extend_schema_field(OpenApiTypes.BOOL)
    def filter_has_failures(
        self, queryset: QuerySet[Generation], name: str, value: str
    ) -> QuerySet[Generation]:
        if value == "true":
            return queryset.filter(failed_items__gt=0)
        return queryset.filter(failed_items=0)

    def filter_search(
        self, queryset: QuerySet[Generation], name: str, value: str
    ) -> QuerySet[Generation]:
        term = " ".join(value.split())
        if not term:
            return queryset
        return queryset.filter(
            Q(title__icontains=term) | Q(prompt__icontains=term) | Q(source_url__icontains=term)
        )
