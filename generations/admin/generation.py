"""The staff admin for generations: find, inspect and act on any generation.

Everything here is read-only: statuses, counters and costs change only through the
services (the actions in actions.py call them) and the pipeline, because a form save
would write back every column and undo the counters' concurrent F() updates. Nothing is
added here (the pipeline creates rows) and nothing is deleted with Django's cascade:
deleting is the soft delete action, and purging its own confirmed action.

The list stays fast with a million rows: no exact COUNT(*) and no facet counts
(LargeTableAdminMixin), joins set once (list_select_related, the thumbnail subquery),
sorting only by creation, filters whose choices cost no query. The variant and item
admins live in items.py, the staff dashboard in dashboard.py.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from generations.admin.actions import GenerationActionsMixin
from generations.admin.base import GenerationModelAdmin, ReadOnlyAdminMixin
from generations.admin.dashboard import dashboard_view
from generations.admin.display import (
    EMPTY,
    ITEM_LIMIT,
    ItemGalleryMixin,
    admin_link,
    generation_cell,
    item_gallery_context,
    json_block,
    moment,
    over,
    progress,
    seconds,
    status_badge,
    thumbnail,
    trash_badge,
)
from generations.admin.filters import HasFailuresFilter, OwnerFilter, ProviderFilter, TrashFilter
from generations.admin.items import VariantInline
from generations.admin.lists import GenerationChangeList, LargeTableAdminMixin
from generations.models import Generation, GenerationMetadata, Item, Variant

# The change page lists at most this many regenerations; the rest are a filtered list.
REGENERATION_LIMIT = 20
# Trigrams: a shorter term cannot use the title and prompt indexes.
MIN_TEXT_SEARCH = 3


def _when(value: datetime) -> str:
    return formats.date_format(timezone.localtime(value), "Y-m-d H:i")


def metadata_field(stage: str) -> Callable[[Any, Generation], SafeString]:
    """A read-only field showing one stage of the generation's metadata as JSON."""

    @admin.display(description=stage.capitalize())
    def field(model_admin: Any, generation: Generation) -> SafeString:
        try:
            metadata = generation.metadata
        except GenerationMetadata.DoesNotExist:
            return EMPTY
        return json_block(getattr(metadata, stage))

    return field


@admin.register(Generation)
class GenerationAdmin(
    ReadOnlyAdminMixin,
    LargeTableAdminMixin,
    ItemGalleryMixin,
    GenerationActionsMixin,
    GenerationModelAdmin,
):
    list_display = [
        "thumbnail_column",
        "title_column",
        "status_column",
        "progress_column",
        "owner_column",
        "kind_column",
        "created_column",
        "time_column",
        "cost_column",
    ]
    list_display_links = ["thumbnail_column", "title_column"]
    list_filter = [
        "status",
        "kind",
        ProviderFilter,
        OwnerFilter,
        "created_at",
        HasFailuresFilter,
        TrashFilter,
    ]
    # Shown as the search box's fields; search_by_id and search_by_text do the searching.
    search_fields = ["title", "prompt", "=owner__username", "=provider_request_id"]
    search_help_text = (
        "A generation, variant or item id; or a word of the title or prompt (3 characters "
        "or more), an owner's username or a provider request id."
    )
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    ordering = ["-created_at"]
    # Sorting by any other column would sort the whole table.
    sortable_by = ["created_column"]
    # The change page's generation comes with these in one query.
    object_select_related = ("owner", "parent", "metadata")
    inlines = [VariantInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "title",
                    "id",
                    "owner",
                    "kind",
                    "status_column",
                    "progress_column",
                    "trash_state",
                    "prompt",
                ]
            },
        ),
        ("Errors", {"fields": ["error_code", "error_message"]}),
        (
            "Timing and cost",
            {
                "fields": [
                    ("created_at", "updated_at"),
                    ("started_at", "completed_at"),
                    "generation_time",
                    ("cost_estimate", "actual_cost"),
                ]
            },
        ),
        ("Lineage", {"fields": ["parent_link", "regenerations_links"]}),
        (
            "Request",
            {
                "classes": ["collapse"],
                "fields": [
                    ("provider", "provider_model", "provider_request_id"),
                    ("source_type", "source_url"),
                    "input_json",
                ],
            },
        ),
        (
            "Metadata",
            {
                "classes": ["collapse"],
                "fields": ["analysis", "transformation", "prompts", "evaluation"],
            },
        ),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    # Lists and search

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[GenerationChangeList]:
        return GenerationChangeList

    @property
    def media(self) -> forms.Media:
        return super().media + OwnerFilter.media()

    def search_by_id(self, queryset: QuerySet[Generation], found: UUID) -> QuerySet[Generation]:
        """The generation of that id, or of the variant or item of that id. Their
        generation is looked up first (one query, two primary keys), so that the list
        query is a primary key lookup too: an IN (subquery) inside an OR would scan the
        table."""
        owners_of_id = (
            Item.objects.filter(id=found)
            .order_by()
            .values_list("generation_id")
            .union(Variant.objects.filter(id=found).order_by().values_list("generation_id"))
        )
        ids = [found, *(row[0] for row in owners_of_id)]
        return queryset.filter(id__in=ids)

    def search_by_text(self, queryset: QuerySet[Generation], term: str) -> QuerySet[Generation]:
        """The term matched as a whole against the title and prompt (trigram indexes), an
        owner's username and the provider request id. A term under MIN_TEXT_SEARCH
        characters is too short for the trigram indexes: it is matched against the
        username and request id only, rather than reading every row."""
        matches = Q(provider_request_id=term)
        if len(term) >= MIN_TEXT_SEARCH:
            matches |= Q(title__icontains=term) | Q(prompt__icontains=term)
        owners = list(User.objects.filter(username__iexact=term).values_list("id", flat=True)[:1])
        if owners:
            matches |= Q(owner_id__in=owners)
        return queryset.filter(matches)

    # Pages

    def get_urls(self) -> list[URLPattern]:
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("dashboard/", dashboard, name="generations_generation_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return dashboard_view(self, request)

    def gallery_context(self, generation: Generation) -> dict[str, Any]:
        items = (
            Item.objects.filter(generation=generation)
            .select_related("variant")
            .order_by("variant__position", "number")[:ITEM_LIMIT]
        )
        return item_gallery_context(
            items,
            kind=generation.kind,
            total=generation.total_items,
            item_filter=f"generation__id__exact={generation.id}",
        )

    # Columns and fields

    @admin.display(description="")
    def thumbnail_column(self, generation: Generation) -> SafeString:
        key = getattr(generation, "thumbnail_key", None)
        return thumbnail(key, alt=f"Thumbnail of {generation}")

    @admin.display(description="Generation")
    def title_column(self, generation: Generation) -> SafeString:
        return generation_cell(generation)

    @admin.display(description="Status")
    def status_column(self, generation: Generation) -> SafeString:
        badge = status_badge(generation.status, generation.get_status_display())
        if generation.deleted_at is not None:
            return format_html("{} {}", badge, trash_badge())
        return badge

    @admin.display(description="Progress")
    def progress_column(self, generation: Generation) -> SafeString:
        return progress(generation)

    @admin.display(description="Owner")
    def owner_column(self, generation: Generation) -> SafeString:
        url = reverse("admin:generations_generation_changelist")
        return format_html(
            '<a href="{}?owner__id__exact={}" title="Only {}\'s generations">{}</a>',
            url,
            generation.owner_id,
            generation.owner.username,
            generation.owner.username,
        )

    @admin.display(description="Kind")
    def kind_column(self, generation: Generation) -> SafeString:
        return over(
            generation.get_kind_display(),
            generation.provider,
            hint=f"Model: {generation.provider_model}",
        )

    @admin.display(description="Created", ordering="created_at")
    def created_column(self, generation: Generation) -> SafeString:
        return moment(generation.created_at)

    @admin.display(description="Cost")
    def cost_column(self, generation: Generation) -> SafeString:
        return over(generation.actual_cost, f"est. {generation.cost_estimate}")

    @admin.display(description="Time")
    def time_column(self, generation: Generation) -> SafeString:
        return format_html(
            '<span class="gv-nowrap">{}</span>', seconds(generation.generation_time_seconds)
        )

    @admin.display(description="Generation time")
    def generation_time(self, generation: Generation) -> str:
        return seconds(generation.generation_time_seconds)

    @admin.display(description="Trash")
    def trash_state(self, generation: Generation) -> SafeString:
        if generation.deleted_at is None:
            return format_html('<span class="gv-muted">{}</span>', "Not in trash")
        purge_at = generation.deleted_at + timedelta(days=settings.TRASH_RETENTION_DAYS)
        return format_html(
            "{} since {}; purged after {} unless restored",
            trash_badge(),
            _when(generation.deleted_at),
            _when(purge_at),
        )

    @admin.display(description="Parent")
    def parent_link(self, generation: Generation) -> SafeString:
        if generation.parent is None:
            return EMPTY
        return admin_link(generation.parent, str(generation.parent))

    @admin.display(description="Regenerations")
    def regenerations_links(self, generation: Generation) -> SafeString:
        children = list(
            Generation.objects.filter(parent=generation)
            .only("id", "title", "kind", "created_at")
            .order_by("created_at")[: REGENERATION_LIMIT + 1]
        )
        if not children:
            return EMPTY
        links = format_html_join(
            "",
            "<li>{} <span class='gv-sub'>{}</span></li>",
            (
                (admin_link(child, str(child)), _when(child.created_at))
                for child in children[:REGENERATION_LIMIT]
            ),
        )
        more = ""
        if len(children) > REGENERATION_LIMIT:
            url = reverse("admin:generations_generation_changelist")
            more = format_html(
                '<li><a href="{}?parent__id__exact={}">All regenerations</a></li>',
                url,
                generation.id,
            )
        return format_html('<ul class="gv-links">{}{}</ul>', links, more)

    @admin.display(description="Input")
    def input_json(self, generation: Generation) -> SafeString:
        return json_block(generation.input)

    analysis = metadata_field("analysis")
    transformation = metadata_field("transformation")
    prompts = metadata_field("prompts")
    evaluation = metadata_field("evaluation")
