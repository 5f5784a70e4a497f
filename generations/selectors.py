"""Reads: querysets with their scoping and joins done once. Callers never filter by owner
themselves, so none can forget to."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from generations.models import Attempt, Event, Generation, Item, Variant
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    FAILURE_OUTCOMES,
    ITEM_EVENTS,
    GenerationStatus,
    ItemStatus,
)


def trash_cutoff(now: datetime | None = None) -> datetime:
    """Generations deleted before this moment are past retention."""
    return (now or timezone.now()) - timedelta(days=settings.TRASH_RETENTION_DAYS)


def generation_scope(user: User, *, include_deleted: bool = False) -> QuerySet[Generation]:
    """The generations `user` may see: their own (staff see everyone's in the admin only)."""
    generations = Generation.objects.filter(owner=user)
    if not include_deleted:
        generations = generations.filter(deleted_at__isnull=True)
    return generations


def generation_get(
    *, user: User, generation_id: UUID | str, include_deleted: bool = False
) -> Generation:
    """One of `user`'s generations; raises Generation.DoesNotExist for anyone else's."""
    return generation_scope(user, include_deleted=include_deleted).get(id=generation_id)


def generation_with_thumbnail(generations: QuerySet[Generation]) -> QuerySet[Generation]:
    """Annotates `thumbnail_key`: the thumbnail of the first completed item, read through
    the item (generation, status) index, one subquery per row of the page."""
    first_thumbnail = (
        Item.objects.filter(generation_id=OuterRef("id"), status=ItemStatus.COMPLETED)
        .exclude(thumbnail_key="")
        .order_by("number")
        .values("thumbnail_key")[:1]
    )
    return generations.annotate(thumbnail_key=Subquery(first_thumbnail))


def generation_list(user: User) -> QuerySet[Generation]:
    """A user's history, newest first, with each row's thumbnail."""
    return generation_with_thumbnail(generation_scope(user)).order_by("-created_at")


def generation_trash_list(user: User) -> QuerySet[Generation]:
    """A user's deleted generations that can still be restored, most recently deleted first."""
    return generation_with_thumbnail(
        Generation.objects.filter(owner=user, deleted_at__gte=trash_cutoff())
    ).order_by("-deleted_at")


def generation_library_list(user: User) -> QuerySet[Generation]:
    """Generations with something to show: completed and partial successes."""
    return generation_list(user).filter(
        status__in=[GenerationStatus.COMPLETED, GenerationStatus.PARTIAL_SUCCESS]
    )


def generation_detail(
    *, user: User, generation_id: UUID | str, include_deleted: bool = False
) -> Generation:
    """A generation with its metadata, variants, items (each with its attempt log) and
    regenerations, in five queries."""
    ordered_items = Prefetch(
        "items",
        queryset=Item.objects.order_by("number").prefetch_related(
            Prefetch("attempt_log", queryset=Attempt.objects.order_by("number"))
        ),
    )
    return (
        generation_scope(user, include_deleted=include_deleted)
        .select_related("metadata")
        .prefetch_related(
            Prefetch(
                "variants",
                queryset=Variant.objects.order_by("position").prefetch_related(ordered_items),
            ),
            Prefetch(
                "regenerations",
                queryset=Generation.objects.only("id", "parent_id").order_by("created_at"),
            ),
        )
        .get(id=generation_id)
    )


def variant_list(generation: Generation) -> QuerySet[Variant]:
    return Variant.objects.filter(generation=generation).order_by("position")


def variant_get(*, user: User, variant_id: UUID | str) -> Variant:
    """One of `user`'s variants (of a generation not in the trash); DoesNotExist otherwise."""
    return Variant.objects.select_related("generation").get(
        id=variant_id, generation__owner=user, generation__deleted_at__isnull=True
    )


def item_list(variant: Variant) -> QuerySet[Item]:
    return Item.objects.filter(variant=variant).order_by("number")


def attempt_list(item: Item) -> QuerySet[Attempt]:
    """Every attempt at `item`, first first."""
    return Attempt.objects.filter(item=item).order_by("number")


def event_list(generation_id: UUID) -> QuerySet[Event]:
    """A generation's event log, in order (scope the generation first: events carry no
    foreign key to check against)."""
    return Event.objects.filter(generation_id=generation_id).order_by("sequence")


def event_timeline(generation_id: UUID) -> tuple[list[Event], dict[str, int]]:
    """What a generation's timeline shows: its own events in order, and its items' events
    counted by type, in two queries however many items it has."""
    events = event_list(generation_id)
    own = list(events.exclude(type__in=ITEM_EVENTS).select_related("actor_user"))
    counts = dict(
        events.filter(type__in=ITEM_EVENTS)
        .order_by()
        .values_list("type")
        .annotate(count=Count("pk"))
        .values_list("type", "count")
    )
    return own, counts


def item_get(*, user: User, item_id: UUID | str) -> Item:
    """One of `user`'s items (of a generation not in the trash); DoesNotExist otherwise."""
    return Item.objects.select_related("variant", "generation").get(
        id=item_id, generation__owner=user, generation__deleted_at__isnull=True
    )


def generation_progress(generation_id: UUID) -> Generation:
    """The fields a progress display needs, nothing more."""
    return Generation.objects.only(
        "status",
        "total_items",
        "completed_items",
        "failed_items",
        "cancelled_items",
        "started_at",
        "updated_at",
    ).get(id=generation_id)


def generation_ids_busy_in_storage(generation_ids: Iterable[UUID]) -> set[UUID]:
    """Of these generations, those that may still be writing objects: active ones, and
    ended ones with an item still finishing (a cancel reaches it at its next checkpoint)."""
    running_item = Item.objects.filter(generation_id=OuterRef("id"), status=ItemStatus.PROCESSING)
    return set(
        Generation.objects.filter(id__in=list(generation_ids))
        .filter(Q(status__in=ACTIVE_GENERATION_STATUSES) | Exists(running_item))
        .values_list("id", flat=True)
    )


def generation_storage_keys(generation_ids: Iterable[UUID]) -> dict[UUID, set[str]]:
    """Every storage key the rows of these generations point to, by generation; a
    generation without rows is absent."""
    ids = list(generation_ids)
    keys: dict[UUID, set[str]] = {}
    for generation_id, snapshot, analysis in Generation.objects.filter(id__in=ids).values_list(
        "id", "input", "metadata__analysis"
    ):
        found = keys.setdefault(generation_id, set())
        if snapshot.get("source_key"):
            found.add(snapshot["source_key"])
        source = (analysis or {}).get("source", {})
        found.update(source.get("keyframes", []))
        if source.get("stored_key"):
            found.add(source["stored_key"])
    items = Item.objects.filter(generation_id__in=ids).order_by()
    for generation_id, asset, thumbnail in items.values_list(
        "generation_id", "asset_key", "thumbnail_key"
    ):
        keys[generation_id].update(key for key in (asset, thumbnail) if key)
    return keys


def generation_ids_with_unnamed_objects(generation_ids: Iterable[UUID]) -> list[UUID]:
    """Of these generations, in their order, those that may hold objects no row names: an item was
    attempted but did not complete (its worker may have stored the asset, then died or
    failed before recording it), or the stages never finished (keyframes may be stored
    before the analysis that names them)."""
    ids = list(generation_ids)
    interrupted = (
        Item.objects.filter(generation_id__in=ids, attempts__gt=0)
        .exclude(status=ItemStatus.COMPLETED)
        .order_by()
        .values_list("generation_id", flat=True)
    )
    unprepared = Generation.objects.filter(id__in=ids, metadata__prompts={}).values_list(
        "id", flat=True
    )
    found = set(interrupted) | set(unprepared)
    return [generation_id for generation_id in ids if generation_id in found]


def item_completed_keys(generation_ids: Iterable[UUID]) -> list[tuple[UUID, str]]:
    """(item id, key) of every object a completed item of these generations points to."""
    pairs: list[tuple[UUID, str]] = []
    for item_id, asset, thumbnail in Item.objects.filter(
        generation_id__in=list(generation_ids), status=ItemStatus.COMPLETED
    ).values_list("id", "asset_key", "thumbnail_key"):
        pairs.extend((item_id, key) for key in (asset, thumbnail) if key)
    return pairs


def generation_progress_snapshot(*, user: User, generation_id: UUID | str) -> dict[str, Any]:
    """Status and counters of one of `user`'s generations and of its variants: the small
    body that clients poll. Two queries."""
    generation = (
        generation_scope(user)
        .only(
            "id",
            "status",
            "total_items",
            "completed_items",
            "failed_items",
            "cancelled_items",
            "updated_at",
        )
        .get(id=generation_id)
    )
    variants = list(
        Variant.objects.filter(generation_id=generation.id)
        .order_by("position")
        .values(
            "id",
            "label",
            "status",
            "total_items",
            "completed_items",
            "failed_items",
            "cancelled_items",
        )
    )
    return {
        "id": generation.id,
        "status": generation.status,
        "total_items": generation.total_items,
        "completed_items": generation.completed_items,
        "failed_items": generation.failed_items,
        "cancelled_items": generation.cancelled_items,
        "pending_items": generation.pending_items,
        "percent": generation.progress_percent,
        "updated_at": generation.updated_at,
        "variants": variants,
    }


# Selectors for the staff dashboard: everyone's rows, each query bounded by an index and a
# LIMIT, so that the page costs the same with a million generations.


def generation_in_flight_totals() -> dict[str, int]:
    """How many generations are pending or processing and the sum of their counters, in
    one aggregate over the (status, updated_at) index."""
    totals: dict[str, Any] = Generation.objects.filter(
        status__in=ACTIVE_GENERATION_STATUSES
    ).aggregate(
        generations=Count("pk"),
        pending=Count("pk", filter=Q(status=GenerationStatus.PENDING)),
        items=Sum("total_items"),
        completed=Sum("completed_items"),
        failed=Sum("failed_items"),
        cancelled=Sum("cancelled_items"),
    )
    return {name: int(value or 0) for name, value in totals.items()}


def generation_in_flight_list(*, limit: int) -> QuerySet[Generation]:
    """The oldest generations still pending or processing, with their owners."""
    return (
        Generation.objects.filter(status__in=ACTIVE_GENERATION_STATUSES)
        .select_related("owner")
        .order_by("created_at")[:limit]
    )


def item_stuck_list(*, now: datetime | None = None) -> QuerySet[Item]:
    """Items processing whose worker has said nothing for ITEM_LEASE_SECONDS (it is
    presumed lost; recovery requeues or fails them), longest silent first, through the
    partial index on processing items."""
    lease_start = (now or timezone.now()) - timedelta(seconds=settings.ITEM_LEASE_SECONDS)
    return (
        Item.objects.filter(status=ItemStatus.PROCESSING, heartbeat_at__lt=lease_start)
        .select_related("generation", "variant")
        .order_by("heartbeat_at")
    )


def generation_stuck_pending_list(*, now: datetime | None = None) -> QuerySet[Generation]:
    """Generations still pending PENDING_REDISPATCH_SECONDS after they were created (their
    message was lost or no worker runs), oldest first."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PENDING_REDISPATCH_SECONDS)
    return (
        Generation.objects.filter(status=GenerationStatus.PENDING, created_at__lt=cutoff)
        .select_related("owner")
        .order_by("created_at")
    )


def attempt_failure_codes(*, since: datetime) -> list[dict[str, Any]]:
    """Attempts that failed since `since`, retried or not, counted by error code, most
    frequent first: a failure a retry made good still counts. Read through the partial
    index of failed attempts by end time."""
    rows = (
        Attempt.objects.filter(outcome__in=FAILURE_OUTCOMES, ended_at__gte=since)
        .values("error_code")
        .annotate(count=Count("pk"))
        .order_by("-count", "error_code")
    )
    return [{"code": row["error_code"] or "(none)", "count": row["count"]} for row in rows]


def capped_count(queryset: QuerySet[Any], cap: int) -> int:
    """The number of rows, counting at most `cap` + 1 of them."""
    return queryset.order_by().values("pk")[: cap + 1].count()
