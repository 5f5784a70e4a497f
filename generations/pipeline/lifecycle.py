"""Item status changes and the counters they move: claim, complete, fail, stop on cancel,
recover from a lost worker, and the backoff between attempts.

Every function here changes an item's status and the matching counters of its variant and
generation atomically, with relative updates, so that concurrent workers never lose an
increment. A claim is one statement, and so is an ending on PostgreSQL: row locks are held
for microseconds, which is what lets many workers finish items of one generation at once.

The ending that brings a variant's counters to their total decides the variant's final
status with one guarded UPDATE; the one that ends the generation's last item decides the
generation (`finalise_if_ended`) under row locks. Either way it happens exactly once. If
the worker dies in between, `recover_stuck_work` finalises what it left.
"""

import json
import os
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations.errors import ErrorCode, GenerationError
from generations.media.probe import MediaInfo
from generations.models import Attempt, Item, Variant
from generations.pipeline.finalise import finalise_if_ended, finalise_variant
from generations.pipeline.records_sql import AttemptEnd, ItemEvent
from generations.pipeline.sql import SQL
from generations.pipeline.statements import (
    Counters,
    claim,
    heartbeat,
    held_by,
    lost_since,
    update_and_close,
    update_and_count,
)
from generations.states import (
    CANCEL_REQUESTED_STATUSES,
    AttemptOutcome,
    EventType,
    ItemStatus,
    ItemTransition,
    QueueReason,
)

# The counter of a variant or generation that counts the items ended in each status.
_COUNTER_OF_STATUS: dict[str, str] = {
    ItemStatus.COMPLETED: "completed_items",
    ItemStatus.FAILED: "failed_items",
    ItemStatus.CANCELLED: "cancelled_items",
}


@dataclass(frozen=True)
class ItemResult:
    """What a finished item stored, and the facts probed from its file."""

    asset_key: str
    thumbnail_key: str
    media: MediaInfo
    cost: Decimal
    provider_job_id: str
    provider_status: str

    def columns(self) -> dict[str, Any]:
        """The item's columns this result fills in."""
        media = self.media
        return {
            "asset_key": self.asset_key,
            "thumbnail_key": self.thumbnail_key,
            "content_type": media.content_type,
            "file_size": media.file_size,
            "checksum": media.checksum,
            "duration_seconds": media.duration_seconds,
            "width": media.width,
            "height": media.height,
            "cost": self.cost,
            "provider_job_id": self.provider_job_id,
            "provider_status": self.provider_status,
        }


@dataclass(frozen=True)
class ClaimedItem:
    """An item taken by one delivery, with what rendering it needs from its variant and
    generation (none of which changes once the generation exists)."""

    id: UUID
    generation_id: UUID
    variant_id: UUID
    number: int
    prompt: str
    attempts: int
    variant_label: str
    kind: str
    provider: str
    provider_model: str
    parameters: dict[str, Any]
    generation_status: str


class ItemRef(Protocol):
    """What the writes below need to know of an item: a ClaimedItem or an Item row."""

    @property
    def id(self) -> UUID: ...
    @property
    def generation_id(self) -> UUID: ...
    @property
    def variant_id(self) -> UUID: ...
    @property
    def attempts(self) -> int: ...


def item_claim(*, item_id: UUID, claim_token: str) -> ClaimedItem | None:
    """Take a queued item for this delivery and return it, or None when it is not
    available (ended, cancelled, or held by another delivery). One statement."""
    now = timezone.now()
    row = claim(
        item_id=item_id,
        claim_token=claim_token,
        now=now,
        max_attempts=settings.ITEM_MAX_ATTEMPTS,
        worker=worker_name(),
        silent_since=now - timedelta(seconds=settings.ITEM_LEASE_SECONDS),
    )
    if row is None:
        return None
    item_id, generation_id, variant_id, number, prompt, attempts = row[:6]
    label, kind, provider, provider_model, parameters, generation_status = row[6:12]
    return ClaimedItem(
        id=_uuid(item_id),
        generation_id=_uuid(generation_id),
        variant_id=_uuid(variant_id),
        number=int(number),
        prompt=prompt,
        attempts=int(attempts),
        variant_label=label,
        kind=kind,
        provider=provider,
        provider_model=provider_model,
        parameters=_json(parameters),
        generation_status=generation_status,
    )


def item_complete(*, item: ItemRef, claim_token: str, result: ItemResult) -> bool:
    """Record a finished item whose objects are already stored. False when the item was
    taken away meanwhile (cancelled or recovered), in which case nothing is counted."""
    complete = ItemTransition.COMPLETE
    return _end_item(
        item,
        complete,
        held_by(item.id, claim_token, complete),
        {
            **result.columns(),
            "error_code": "",
            "error_message": "",
            "storage_outage_since": None,
        },
        AttemptEnd(
            outcome=AttemptOutcome.COMPLETED,
            provider_job_id=result.provider_job_id,
            cost=result.cost,
        ),
        ItemEvent(EventType.ITEM_COMPLETED, {"cost": str(result.cost)}),
    )


def item_fail(*, item: ItemRef, claim_token: str, error: GenerationError) -> float | None:
    """Record a failed attempt. A retryable error with attempts left puts the item back
    in the queue and returns the delay before the next attempt; otherwise the item fails
    for good and None is returned.

    Unreachable storage is waited out instead, whatever the attempts, for up to
    STORAGE_OUTAGE_SECONDS from the first such failure in a row, retrying at least every
    STORAGE_RETRY_MAX_DELAY_SECONDS; after that the item fails (retryable by the user)."""
    now = timezone.now()
    outage_since: datetime | None = None
    if error.code == ErrorCode.STORAGE_UNAVAILABLE:
        outage_since = _storage_outage_since(item.id) or now
        outage = timedelta(seconds=settings.STORAGE_OUTAGE_SECONDS)
        retry = now - outage_since < outage
        delay = min(retry_delay(item.attempts), settings.STORAGE_RETRY_MAX_DELAY_SECONDS)
    else:
        retry = error.retryable and item.attempts < settings.ITEM_MAX_ATTEMPTS
        delay = retry_delay(item.attempts)
    if retry:
        requeue = ItemTransition.REQUEUE
        requeued = update_and_close(
            {
                "status": requeue.target,
                "claim_token": "",
                "queue_reason": QueueReason.AUTOMATIC_RETRY,
                "queued_at": now,
                "updated_at": now,
                "error_code": error.code,
                "error_message": error.message,
                "storage_outage_since": outage_since,
            },
            held_by(item.id, claim_token, requeue),
            _failed(error, AttemptOutcome.RETRYING),
            _event(EventType.ITEM_RETRIED, error, reason=QueueReason.AUTOMATIC_RETRY),
        )
        return delay if requeued else None
    fail = ItemTransition.FAIL
    _end_item(
        item,
        fail,
        held_by(item.id, claim_token, fail),
        {"error_code": error.code, "error_message": error.message},
        _failed(error, AttemptOutcome.FAILED),
        _event(EventType.ITEM_FAILED, error),
    )
    return None


def _storage_outage_since(item_id: UUID) -> datetime | None:
    since: datetime | None = (
        Item.objects.filter(id=item_id).values_list("storage_outage_since", flat=True).first()
    )
    return since


def worker_name() -> str:
    """This worker process, as its attempts record it (read at each claim: pool processes
    are forked after this module is imported)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _event(type: str, error: GenerationError, **payload: Any) -> ItemEvent:
    return ItemEvent(type, {"error_code": error.code, **payload})


def _failed(error: GenerationError, outcome: str) -> AttemptEnd:
    return AttemptEnd(
        outcome=outcome,
        error_code=error.code,
        error_message=error.message,
        retryable=error.retryable,
    )


def item_heartbeat(*, item_id: UUID, claim_token: str) -> str | None:
    """Renew the lease of an item this delivery holds, and read its generation's status in
    the same statement; None when the item is no longer this delivery's."""
    return heartbeat(item_id=item_id, claim_token=claim_token, now=timezone.now())


def item_stop_cancelled(*, item: ItemRef, claim_token: str) -> None:
    """A running item reached a checkpoint after its generation was cancelled."""
    stop = ItemTransition.STOP
    message = "Stopped because the generation was cancelled."
    _end_item(
        item,
        stop,
        held_by(item.id, claim_token, stop),
        {"error_code": ErrorCode.CANCELLED, "error_message": message},
        AttemptEnd(
            outcome=AttemptOutcome.CANCELLED, error_code=ErrorCode.CANCELLED, error_message=message
        ),
        ItemEvent(EventType.ITEM_CANCELLED),
    )


def item_recover_lost(*, item_id: UUID, silent_since: datetime) -> bool:
    """An item still processing whose worker has said nothing since `silent_since` lost
    its worker: queue it again while attempts remain (True: dispatch it), else fail it as
    worker_lost."""
    now = timezone.now()
    requeue = ItemTransition.REQUEUE
    with transaction.atomic():
        if Item.objects.filter(
            id=item_id,
            status__in=requeue.sources,
            heartbeat_at__lt=silent_since,
            attempts__lt=settings.ITEM_MAX_ATTEMPTS,
        ).update(
            status=requeue.target,
            claim_token="",
            queue_reason=QueueReason.RECOVERY,
            queued_at=now,
            updated_at=now,
        ):
            Attempt.objects.filter(item_id=item_id, ended_at__isnull=True).update(
                **_lost(now).values(now)
            )
            ItemEvent(
                EventType.ITEM_RETRIED,
                {"error_code": ErrorCode.WORKER_LOST, "reason": QueueReason.RECOVERY},
            ).record(item_id, now)
            return True
    fail = ItemTransition.FAIL
    item = Item.objects.filter(
        id=item_id, status__in=fail.sources, heartbeat_at__lt=silent_since
    ).first()
    if item is not None:
        message = f"The worker stopped responding {item.attempts} times."
        _end_item(
            item,
            fail,
            lost_since(item_id, silent_since, fail),
            {"error_code": ErrorCode.WORKER_LOST, "error_message": message},
            _lost(now, message),
            ItemEvent(EventType.ITEM_FAILED, {"error_code": ErrorCode.WORKER_LOST}),
        )
    return False


def _lost(now: datetime, message: str = "The worker stopped responding.") -> AttemptEnd:
    return AttemptEnd(
        outcome=AttemptOutcome.LOST,
        error_code=ErrorCode.WORKER_LOST,
        error_message=message,
        retryable=True,
    )


def queued_items_end(
    *, variant_ids: list[UUID], transition: ItemTransition, code: str, message: str, now: datetime
) -> int:
    """End, by `transition`, the items of these variants that no worker has taken, each
    counted in its variant; returns how many ended, for the generation's counter (which
    the caller moves in the same transaction)."""
    counter = _COUNTER_OF_STATUS[transition.target]
    ended_total = 0
    for variant_id in variant_ids:
        ended = Item.objects.filter(variant_id=variant_id, status__in=transition.sources).update(
            status=transition.target,
            completed_at=now,
            updated_at=now,
            error_code=code,
            error_message=message,
        )
        if ended:
            Variant.objects.filter(id=variant_id).update(
                **{counter: F(counter) + ended}, updated_at=now
            )
        ended_total += ended
    return ended_total


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base, ... capped."""
    base = settings.ITEM_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 (spreading retries, not security)
    return float(min(base * jitter, settings.ITEM_RETRY_MAX_DELAY_SECONDS))


def _end_item(
    item: ItemRef,
    transition: ItemTransition,
    where: SQL,
    values: dict[str, Any],
    end: AttemptEnd,
    event: ItemEvent,
) -> bool:
    """End the item by `transition` if `where` still matches it (it does not once the item
    was taken away) and count it in its variant and generation, in one transaction; then,
    if it was the last item of either, decide their final status. False when nothing
    matched."""
    now = timezone.now()
    counted = update_and_count(
        {"status": transition.target, "completed_at": now, "updated_at": now, **values},
        where,
        counter=_COUNTER_OF_STATUS[transition.target],
        end=end,
        event=event,
        variant_id=item.variant_id,
        generation_id=item.generation_id,
    )
    if counted is None:
        return False
    if _all_ended(counted.generation):
        # Every variant, in case an earlier variant's finalisation was lost with its worker.
        finalise_if_ended(generation_id=item.generation_id, now=now)
    elif _all_ended(counted.variant):
        # The counters just returned are the variant's last: one guarded UPDATE decides it.
        finalise_variant(
            item.variant_id,
            counted.variant,
            cancel_requested=counted.generation_status in CANCEL_REQUESTED_STATUSES,
            now=now,
        )
    return True


def _all_ended(counters: Counters) -> bool:
    total, completed, failed, cancelled = counters
    return completed + failed + cancelled >= total


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _json(value: Any) -> dict[str, Any]:
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(decoded or {})
