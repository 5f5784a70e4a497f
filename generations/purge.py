"""Removing generations for good: those past the trash's retention (beat, hourly, and
`manage.py purge_deleted`), and those staff purge now from the admin. Stored objects go
first, then rows, in batches."""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from generations.models import Attempt, Event, Generation, GenerationMetadata, Item, Variant
from generations.selectors import (
    generation_ids_busy_in_storage,
    generation_ids_with_unnamed_objects,
    generation_storage_keys,
    trash_cutoff,
)
from generations.states import EventType
from storage.keys import generation_prefix
from storage.services import objects_delete, prefix_delete

PURGE_BATCH_SIZE = 500


def generations_purge_expired(
    *, now: datetime | None = None, batch_size: int = PURGE_BATCH_SIZE
) -> int:
    """Remove generations past retention, their stored objects and their rows, in batches.
    Objects go first, so a failure part-way leaves rows that the next purge retries rather
    than objects that nothing points to; rows past retention are never shown meanwhile."""
    cutoff = trash_cutoff(now)
    purged = 0
    while True:
        ids = list(
            Generation.objects.filter(deleted_at__lt=cutoff)
            .order_by("deleted_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return purged
        purge_batch(ids)
        purged += len(ids)


NOT_IN_TRASH = "Not in the trash; move it to the trash first."
STILL_STOPPING = "Some items are still stopping; try again in a moment."


@dataclass(frozen=True)
class PurgeOutcome:
    """What `generations_purge` did: the ids purged, and why each other id was not."""

    purged: list[UUID] = field(default_factory=list)
    refused: dict[UUID, str] = field(default_factory=dict)


def generations_purge(
    *, generation_ids: list[UUID], batch_size: int = PURGE_BATCH_SIZE
) -> PurgeOutcome:
    """Remove these generations now if they are in the trash, whatever their retention
    period: stored objects first, then rows, in batches, like `generations_purge_expired`.

    A generation outside the trash is refused, and so is one whose items may still be
    writing objects (purging it now would leave objects that nothing points to). Ids that
    no longer exist are ignored. A generation restored between the check and its purge
    is still purged: the staff member asked for it moments before."""
    wanted = list(dict.fromkeys(generation_ids))
    deleted_at = dict(Generation.objects.filter(id__in=wanted).values_list("id", "deleted_at"))
    in_trash = {gid for gid, when in deleted_at.items() if when is not None}
    busy = generation_ids_busy_in_storage(in_trash)
    refused = {gid: NOT_IN_TRASH for gid in wanted if gid in deleted_at and gid not in in_trash}
    refused.update((gid, STILL_STOPPING) for gid in busy)
    purgeable = [gid for gid in wanted if gid in in_trash and gid not in busy]
    for start in range(0, len(purgeable), batch_size):
        purge_batch(purgeable[start : start + batch_size])
    return PurgeOutcome(purged=purgeable, refused=refused)


def purge_batch(ids: list[UUID]) -> None:
    """Objects, then rows, of these generations (see generations_purge_expired for why
    in that order). The objects the rows name go in batched requests; a generation's
    folder is listed only when it may hold objects that no row names."""
    named = generation_storage_keys(ids)
    objects_delete(key for keys in named.values() for key in keys)
    for generation_id in generation_ids_with_unnamed_objects(ids):
        prefix_delete(generation_prefix(generation_id))
    with transaction.atomic():
        _log_purges(ids)
        Generation.objects.filter(parent_id__in=ids).update(parent=None)
        # Children before parents, so no row is left to cascade to: plain DELETEs, without
        # the collector that would load every variant and generation first.
        for rows in (
            Attempt.objects.filter(generation_id__in=ids),
            Item.objects.filter(generation_id__in=ids),
            Variant.objects.filter(generation_id__in=ids),
            GenerationMetadata.objects.filter(generation_id__in=ids),
            Generation.objects.filter(id__in=ids),
        ):
            rows._raw_delete(rows.db)


def _log_purges(ids: list[UUID]) -> None:
    """A `purged` event for each of these generations, the last of its log (which outlives
    it): one statement for the batch, numbered after each one's last event."""
    now = timezone.now()
    Event.objects.bulk_create(
        Event(
            generation_id=generation_id,
            owner_id=owner_id,
            sequence=last + 1,
            type=EventType.PURGED,
            created_at=now,
        )
        for generation_id, owner_id, last in Generation.objects.filter(id__in=ids).values_list(
            "id", "owner_id", "last_event_sequence"
        )
    )
