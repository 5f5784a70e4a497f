"""The variant and item admins, the variants inline of the generation page and the
attempts inline of the item page.

Like the generation admin, they only show: no add, no Django delete, no form saves
(a save would write back every column and undo the counters' concurrent F() updates).
Their lists are ordered by a unique index, so that no page sorts the table, and never
count a whole table; the item list stays fast at tens of millions of rows.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from generations.admin.base import (
    ItemModelAdmin,
    ReadOnlyAdminMixin,
    VariantModelAdmin,
    VariantTabularInline,
)
from generations.admin.display import (
    EMPTY,
    ITEM_LIMIT,
    ItemGalleryMixin,
    admin_link,
    error_cell,
    filesize,
    generation_cell,
    item_gallery_context,
    item_media,
    moment,
    over,
    progress,
    seconds,
    short_id,
    status_badge,
    thumbnail,
)
from generations.admin.filters import ErrorCodeFilter, FailedWithCodeFilter, StuckFilter
from generations.admin.lists import LargeTableAdminMixin
from generations.models import Attempt, Item, Variant

if TYPE_CHECKING:
    AttemptTabularInline = admin.TabularInline[Attempt, Item]
else:
    AttemptTabularInline = admin.TabularInline


class VariantColumnsMixin:
    """The status, progress and end columns of a variant, in its list and in the inline."""

    @admin.display(description="Status")
    def status_column(self, variant: Variant) -> SafeString:
        return status_badge(variant.status, variant.get_status_display())

    @admin.display(description="Items done")
    def progress_column(self, variant: Variant) -> SafeString:
        return progress(variant)

    @admin.display(description="Ended")
    def completed_column(self, variant: Variant) -> SafeString:
        return moment(variant.completed_at)


class VariantInline(ReadOnlyAdminMixin, VariantColumnsMixin, VariantTabularInline):
    model = Variant
    readonly_fields = (
        "label",
        "position",
        "status_column",
        "progress_column",
        "error",
        "completed_column",
    )
    fields = readonly_fields
    ordering = ["position"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the generation sees its variants.
        return bool(request.user.has_perm("generations.view_generation")) or bool(
            request.user.has_perm("generations.change_generation")
        )

    @admin.display(description="Error")
    def error(self, variant: Variant) -> SafeString:
        return error_cell(variant.error_code, variant.error_message)


class AttemptInline(ReadOnlyAdminMixin, AttemptTabularInline):
    """The item's attempt log, first attempt first: the (item, number) unique index serves
    both the filter and the order, and every column is the attempt's own."""

    model = Attempt
    readonly_fields = (
        "number",
        "reason",
        "started_column",
        "duration_column",
        "outcome_column",
        "error",
        "provider_column",
        "worker_column",
    )
    fields = readonly_fields
    ordering = ["number"]
    extra = 0
    max_num = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the item sees its attempts.
        return bool(request.user.has_perm("generations.view_item")) or bool(
            request.user.has_perm("generations.change_item")
        )

    @admin.display(description="Started")
    def started_column(self, attempt: Attempt) -> SafeString:
        return moment(attempt.started_at)

    @admin.display(description="Duration")
    def duration_column(self, attempt: Attempt) -> str:
        if attempt.ended_at is None:
            return "—"
        return seconds((attempt.ended_at - attempt.started_at).total_seconds())

    @admin.display(description="Outcome")
    def outcome_column(self, attempt: Attempt) -> SafeString:
        if not attempt.outcome:
            return status_badge("processing", "Running")
        return status_badge(attempt.outcome, attempt.get_outcome_display())

    @admin.display(description="Error")
    def error(self, attempt: Attempt) -> SafeString:
        cell = error_cell(attempt.error_code, attempt.error_message)
        if attempt.retryable is None:
            return cell
        return format_html(
            '{}<span class="gv-sub">{}</span>',
            cell,
            "Retryable" if attempt.retryable else "Not retryable",
        )

    @admin.display(description="Provider job")
    def provider_column(self, attempt: Attempt) -> SafeString:
        return over(attempt.provider_job_id or "—", f"cost {attempt.cost}")

    @admin.display(description="Worker")
    def worker_column(self, attempt: Attempt) -> SafeString:
        if not attempt.worker:
            return EMPTY
        return format_html('<span class="gv-nowrap">{}</span>', attempt.worker)


@admin.register(Variant)
class VariantAdmin(
    ReadOnlyAdminMixin,
    LargeTableAdminMixin,
    ItemGalleryMixin,
    VariantColumnsMixin,
    VariantModelAdmin,
):
    list_display = [
        "label",
        "generation_column",
        "position",
        "status_column",
        "progress_column",
        "error_code",
        "started_column",
        "completed_column",
    ]
    list_filter = ["status", ErrorCodeFilter]
    list_select_related = ["generation"]
    search_fields = ["label"]
    search_help_text = "A variant or generation id, or a variant label (exactly)."
    # The (generation, position) unique index: a total order that needs no sort.
    ordering = ["generation_id", "position"]
    object_select_related = ("generation",)
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "label",
                    "id",
                    "generation_column",
                    "position",
                    "status_column",
                    "progress_column",
                ]
            },
        ),
        ("Errors", {"fields": ["error_code", "error_message"]}),
        (
            "Timing",
            {"fields": [("created_at", "updated_at"), ("started_at", "completed_at")]},
        ),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    def search_by_id(self, queryset: QuerySet[Variant], found: UUID) -> QuerySet[Variant]:
        return queryset.filter(Q(id=found) | Q(generation_id=found))

    def search_by_text(self, queryset: QuerySet[Variant], term: str) -> QuerySet[Variant]:
        # Exact, so that the label index serves it.
        return queryset.filter(label=term)

    def gallery_context(self, variant: Variant) -> dict[str, Any]:
        items = Item.objects.filter(variant=variant).order_by("number")[:ITEM_LIMIT]
        for item in items:
            item.variant = variant
        return item_gallery_context(
            items,
            kind=variant.generation.kind,
            total=variant.total_items,
            item_filter=f"variant__id__exact={variant.id}",
        )

    @admin.display(description="Generation")
    def generation_column(self, variant: Variant) -> SafeString:
        return generation_cell(variant.generation, link=True)

    @admin.display(description="Started")
    def started_column(self, variant: Variant) -> SafeString:
        return moment(variant.started_at)


@admin.register(Item)
class ItemAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, ItemModelAdmin):
    list_display = [
        "thumbnail_column",
        "item_column",
        "generation_column",
        "variant_column",
        "status_column",
        "attempts",
        "facts_column",
        "cost",
        "completed_column",
    ]
    list_display_links = ["thumbnail_column", "item_column"]
    list_filter = ["status", FailedWithCodeFilter, StuckFilter]
    list_select_related = ["generation", "variant"]
    # Search is by id only: every other column would be a scan of the largest table.
    search_fields = ["=id"]
    search_help_text = "An item, variant or generation id."
    # The (variant, number) unique index: a total order that needs no sort, however
    # many million rows. (The model's own ordering sorts by joined tables.)
    ordering = ["variant_id", "number"]
    object_select_related = ("generation", "variant")
    inlines = [AttemptInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "item_column",
                    "id",
                    "generation_column",
                    "variant_column",
                    "status_column",
                    "player",
                    "prompt",
                ]
            },
        ),
        ("Errors", {"fields": ["error_code", "error_message"]}),
        (
            "Work",
            {
                "fields": [
                    "attempts",
                    "claim_token",
                    ("provider_job_id", "provider_status"),
                    ("created_at", "updated_at"),
                    ("queued_at", "started_at", "completed_at"),
                ]
            },
        ),
        (
            "File",
            {
                "fields": [
                    "asset_key",
                    "thumbnail_key",
                    ("content_type", "file_size_column"),
                    ("duration_column", "width", "height"),
                    "checksum",
                    "cost",
                ]
            },
        ),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    def search_by_id(self, queryset: QuerySet[Item], found: UUID) -> QuerySet[Item]:
        return queryset.filter(Q(id=found) | Q(generation_id=found) | Q(variant_id=found))

    @admin.display(description="")
    def thumbnail_column(self, item: Item) -> SafeString:
        return thumbnail(item.thumbnail_key, alt=f"Thumbnail of item {item.number}")

    @admin.display(description="Item")
    def item_column(self, item: Item) -> SafeString:
        return format_html(
            '<span class="gv-title">Item {}</span>{}', item.number, short_id(item.id)
        )

    @admin.display(description="Generation")
    def generation_column(self, item: Item) -> SafeString:
        return generation_cell(item.generation, link=True)

    @admin.display(description="Variant")
    def variant_column(self, item: Item) -> SafeString:
        return admin_link(item.variant, item.variant.label)

    @admin.display(description="Status")
    def status_column(self, item: Item) -> SafeString:
        badge = status_badge(item.status, item.get_status_display())
        if not item.error_code:
            return badge
        return format_html('{}<code class="gv-sub">{}</code>', badge, item.error_code)

    @admin.display(description="Media")
    def facts_column(self, item: Item) -> SafeString:
        facts = []
        if item.duration_seconds is not None:
            facts.append(seconds(item.duration_seconds))
        if item.width and item.height:
            facts.append(f"{item.width}×{item.height}")  # noqa: RUF001 (the dimension sign)
        if item.file_size is not None:
            facts.append(filesize(item.file_size))
        return format_html('<span class="gv-nowrap">{}</span>', " · ".join(facts) or "—")

    @admin.display(description="Ended")
    def completed_column(self, item: Item) -> SafeString:
        return moment(item.completed_at)

    @admin.display(description="Player")
    def player(self, item: Item) -> SafeString:
        return item_media(item, kind=item.generation.kind)

    @admin.display(description="Size")
    def file_size_column(self, item: Item) -> str:
        return filesize(item.file_size)

    @admin.display(description="Duration")
    def duration_column(self, item: Item) -> str:
        return seconds(item.duration_seconds)
