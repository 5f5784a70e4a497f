"""What an owner (or staff) does with a generation once it exists: cancel, retry or resume,
delete and restore."""

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations.dispatch import dispatch_generation
from generations.errors import (
    RETRY_FUTILE_CODES,
    ActionRefused,
    ErrorCode,
)
from generations.events import event_record
from generations.models import Generation, Item, Variant
from generations.pipeline.finalise import finalise_if_ended
from generations.pipeline.lifecycle import queued_items_end
from generations.selectors import (
    trash_cutoff,
)
from generations.states import (
    EventType,
    GenerationStatus,
    GenerationTransition,
    ItemStatus,
    ItemTransition,
    QueueReason,
    can_cancel,
    can_retry,
    rollup_status,
)


def generation_cancel(*, generation: Generation, by: User | None = None) -> Generation:
    """Cancel a pending or processing generation: queued items are cancelled now. With
    items still running, the generation is `cancelling` until they stop at their next
    checkpoint, and only then `cancelled`, its counters final; with none running it is
    cancelled at once. Raises ActionRefused once it has ended or is being cancelled."""
    if not can_cancel(generation.status):
        raise ActionRefused(
            f"This generation is already {generation.get_status_display().lower()}; "
            "only pending or processing generations can be cancelled."
        )
    now = timezone.now()
    variant_ids = list(generation.variants.values_list("id", flat=True))
    with transaction.atomic():
        event_record(generation.id, EventType.CANCEL_REQUESTED, by=by or generation.owner, now=now)
        cancelled = queued_items_end(
            variant_ids=variant_ids,
            transition=ItemTransition.CANCEL,
            code=ErrorCode.CANCELLED,
            message="Cancelled before it started.",
            now=now,
        )
        # The queued items are locked now: no claim can start another one meanwhile.
        running = Item.objects.filter(
            generation_id=generation.id, status__in=ItemTransition.STOP.sources
        ).exists()
        change = GenerationTransition.REQUEST_CANCEL if running else GenerationTransition.CANCEL
        ended = (
            {}
            if running
            else {
                "completed_at": now,
                "generation_time_seconds": generation.elapsed_seconds(now),
            }
        )
        if not Generation.objects.filter(id=generation.id, status__in=change.sources).update(
            status=change.target,
            cancelled_items=F("cancelled_items") + cancelled,
            updated_at=now,
            error_code=ErrorCode.CANCELLED,
            error_message="Cancelled on request.",
            **ended,
        ):
            raise ActionRefused("This generation ended before it could be cancelled.")
        if not running:
            event_record(
                generation.id, EventType.CANCELLED, payload={"cancelled_items": cancelled}, now=now
            )
        finalise_if_ended(generation_id=generation.id, variant_ids=variant_ids, now=now)
    generation.refresh_from_db()
    return generation


def generation_retry(*, generation: Generation, by: User | None = None) -> int:
    """Run again every item that failed or was cancelled, keeping the completed ones.
    Returns how many items were queued; raises ActionRefused when there is nothing to do."""
    if generation.deleted_at is not None:
        raise ActionRefused("This generation is in the trash; restore it first.")
    still_stopping = "Some items are still stopping; try again in a moment."
    if generation.status == GenerationStatus.CANCELLING:
        raise ActionRefused(still_stopping)
    if not can_retry(generation.status):
        raise ActionRefused(
            f"A {generation.get_status_display().lower()} generation has nothing to retry."
        )
    if generation.items.filter(status__in=ItemTransition.STOP.sources).exists():
        raise ActionRefused(still_stopping)
    now = timezone.now()
    retry = GenerationTransition.RETRY
    # Running a cancelled generation's items again resumes it; otherwise it is a retry.
    resuming = generation.status == GenerationStatus.CANCELLED
    reset = {
        "status": ItemTransition.RETRY.target,
        "claim_token": "",
        "queue_reason": QueueReason.RESUME if resuming else QueueReason.USER_RETRY,
        "queued_at": now,
        "started_at": None,
        "completed_at": None,
        "updated_at": now,
        "error_code": "",
        "error_message": "",
    }
    with transaction.atomic():
        failed_total = cancelled_total = 0
        for variant in generation.variants.all():
            items = Item.objects.filter(variant_id=variant.id).exclude(
                status=ItemStatus.FAILED, error_code__in=RETRY_FUTILE_CODES
            )
            requeued = {
                status: items.filter(status=status).update(**reset)
                for status in ItemTransition.RETRY.sources
            }
            failed, cancelled = requeued[ItemStatus.FAILED], requeued[ItemStatus.CANCELLED]
            if not failed + cancelled:
                # Every item of this variant completed, but it may have ended cancelled
                # because a cancel won; with the cancel undone, its counters decide.
                Variant.objects.filter(id=variant.id).update(
                    status=rollup_status(
                        total=variant.total_items,
                        completed=variant.completed_items,
                        failed=0,
                        cancelled=0,
                    )
                    or variant.status,
                    updated_at=now,
                )
            else:
                Variant.objects.filter(id=variant.id).update(
                    failed_items=F("failed_items") - failed,
                    cancelled_items=F("cancelled_items") - cancelled,
                    status=retry.target,
                    completed_at=None,
                    updated_at=now,
                    error_code="",
                    error_message="",
                )
            failed_total += failed
            cancelled_total += cancelled
        if not failed_total + cancelled_total:
            if generation.failed_items:
                raise ActionRefused(
                    "The failed items cannot succeed by running them again (their input was "
                    "refused); edit and regenerate instead."
                )
            raise ActionRefused("Every item of this generation completed; nothing to retry.")
        if not Generation.objects.filter(id=generation.id, status=generation.status).update(
            status=retry.target,
            failed_items=F("failed_items") - failed_total,
            cancelled_items=F("cancelled_items") - cancelled_total,
            started_at=now,
            completed_at=None,
            updated_at=now,
            error_code="",
            error_message="",
        ):
            raise ActionRefused("This generation changed meanwhile; reload and try again.")
        event_record(
            generation.id,
            EventType.RETRIED,
            by=by or generation.owner,
            payload={"items": failed_total + cancelled_total, "resume": resuming},
            now=now,
        )
        dispatch_generation(generation.id, now=now)
    generation.refresh_from_db()
    return failed_total + cancelled_total


def generation_delete(*, generation: Generation, by: User | None = None) -> Generation:
    """Move to the trash (cancelling it first if it is still running: its items settle
    there). The purge removes
    it for good after TRASH_RETENTION_DAYS."""
    if generation.deleted_at is not None:
        raise ActionRefused("This generation is already in the trash.")
    if can_cancel(generation.status):
        generation_cancel(generation=generation, by=by)
    now = timezone.now()
    with transaction.atomic():
        if Generation.objects.filter(id=generation.id, deleted_at__isnull=True).update(
            deleted_at=now
        ):
            event_record(generation.id, EventType.DELETED, by=by or generation.owner, now=now)
    generation.refresh_from_db()
    return generation


def generation_restore(*, generation: Generation, by: User | None = None) -> Generation:
    """Take a generation out of the trash while its retention period lasts."""
    if generation.deleted_at is None:
        raise ActionRefused("This generation is not in the trash.")
    if generation.deleted_at < trash_cutoff():
        raise ActionRefused("This generation has passed its retention period and will be purged.")
    with transaction.atomic():
        if Generation.objects.filter(id=generation.id, deleted_at__isnull=False).update(
            deleted_at=None
        ):
            event_record(generation.id, EventType.RESTORED, by=by or generation.owner)
    generation.refresh_from_db()
    return generation
