"""The variant and item admins, and the variants inline of the generation page.

Like the generation admin, they only show: no add, no Django delete, no form saves
(a save would write back every column and undo the counters' concurrent F() updates).
Their lists are ordered by a unique index, so that no page sorts the table, and never
count a whole table; the item list stays fast at tens of millions of rows.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from generations.admin_display import (
    EMPTY,
    ITEM_LIMIT,
    admin_link,
    generation_cell,
    item_gallery_context,
    item_media,
    moment,
    progress,
    seconds,
    status_badge,
    thumbnail,
)
from generations.admin_lists import (
    ErrorCodeFilter,
    EstimatedCountPaginator,
    FailedWithCodeFilter,
    StuckFilter,
    parse_uuid,
)
from generations.models import Generation, Item, Variant
from history.templatetags.history_tags import filesize

if TYPE_CHECKING:
    # ModelAdmin is generic only in django-stubs.
    VariantModelAdmin = admin.ModelAdmin[Variant]
    ItemModelAdmin = admin.ModelAdmin[Item]
    VariantTabularInline = admin.TabularInline[Variant, Generation]
else:
    VariantModelAdmin = ItemModelAdmin = admin.ModelAdmin
    VariantTabularInline = admin.TabularInline


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


class VariantColumnsMixin:
    """The status, progress and end columns of a variant, in its list and in the inline."""

    @admin.display(description="Status")
    def status_column(self, variant: Variant) -> SafeString:
        return status_badge(variant.status, variant.get_status_display())

    @admin.display(description="Items done")
    def progress_column(self, variant: Variant) -> SafeString:
        return progress(
            total=variant.total_items,
            completed=variant.completed_items,
            failed=variant.failed_items,
            cancelled=variant.cancelled_items,
        )

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
    def error(self, variant: Variant) -> SafeString | str:
        if not variant.error_code:
            return EMPTY
        return format_html("<code>{}</code> {}", variant.error_code, variant.error_message)


@admin.register(Variant)
class VariantAdmin(ReadOnlyAdminMixin, VariantColumnsMixin, VariantModelAdmin):
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
    sortable_by = ()
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    list_per_page = 50
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

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Variant], search_term: str
    ) -> tuple[QuerySet[Variant], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        found = parse_uuid(term)
        if found is not None:
            return queryset.filter(Q(id=found) | Q(generation_id=found)), False
        # Exact, so that the label index serves it.
        return queryset.filter(label=term), False

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Variant | None:
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            return (
                self.get_queryset(request).select_related("generation").get(pk=UUID(str(object_id)))
            )
        except (Variant.DoesNotExist, ValidationError, ValueError):
            return None

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Variant | None = None,
    ) -> HttpResponse:
        if obj is not None:
            items = Item.objects.filter(variant=obj).order_by("number")[:ITEM_LIMIT]
            for item in items:
                item.variant = obj
            context.update(
                item_gallery_context(
                    items,
                    kind=obj.generation.kind,
                    total=obj.total_items,
                    item_filter=f"variant__id__exact={obj.id}",
                )
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Generation")
    def generation_column(self, variant: Variant) -> SafeString:
        return generation_cell(variant.generation, link=True)

    @admin.display(description="Started")
    def started_column(self, variant: Variant) -> SafeString:
        return moment(variant.started_at)


@admin.register(Item)
class ItemAdmin(ReadOnlyAdminMixin, ItemModelAdmin):
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
    search_help_text = "A item, variant or generation id."
    # The (variant, number) unique index: a total order that needs no sort, however
    # many million rows. (The model's own ordering sorts by joined tables.)
    ordering = ["variant_id", "number"]
    sortable_by = ()
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    list_per_page = 50
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

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Item], search_term: str
    ) -> tuple[QuerySet[Item], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        found = parse_uuid(term)
        if found is None:
            return queryset.none(), False
        return queryset.filter(Q(id=found) | Q(generation_id=found) | Q(variant_id=found)), False

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Item | None:
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            return (
                self.get_queryset(request)
                .select_related("generation", "variant")
                .get(pk=UUID(str(object_id)))
            )
        except (Item.DoesNotExist, ValidationError, ValueError):
            return None

    @admin.display(description="")
    def thumbnail_column(self, item: Item) -> SafeString:
        return thumbnail(item.thumbnail_key, alt=f"Thumbnail of item {item.number}")

    @admin.display(description="Item")
    def item_column(self, item: Item) -> SafeString:
        return format_html(
            '<span class="gv-title">Item {}</span><code class="gv-id" title="{}">{}</code>',
            item.number,
            item.id,
            str(item.id)[:8],
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
