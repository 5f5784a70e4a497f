"""Recovering work whose worker or message was lost: items held past their lease,
generations and items never enqueued again, and generations never decided."""

from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations.dispatch import dispatch_generation, dispatch_items
from generations.models import Generation, Item
from generations.pipeline.finalise import finalise_if_ended
from generations.pipeline.lifecycle import item_recover_lost
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    GenerationStatus,
    GenerationTransition,
    ItemTransition,
)

RECOVERY_BATCH_SIZE = 500


def recover_stuck_work() -> dict[str, int]:
    """Requeue or fail items whose worker was lost, and re-enqueue work whose message was
    lost (generations still pending, stages never finished, queued items never taken)."""
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.ITEM_LEASE_SECONDS)
    requeued, lost = [], 0
    stale = Item.objects.filter(
        status__in=ItemTransition.REQUEUE.sources, heartbeat_at__lt=lease_start
    ).values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    for item_id in stale:
        if item_recover_lost(item_id=item_id, silent_since=lease_start):
            requeued.append(item_id)
        else:
            lost += 1
    dispatch_items(requeued)

    pending = list(
        Generation.objects.filter(
            status__in=GenerationTransition.START.sources,
            created_at__lt=now - timedelta(seconds=settings.PENDING_REDISPATCH_SECONDS),
        ).values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    # The stages may take as long as their task's time limit before anything is written.
    stages_deadline = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    unprepared = list(
        Generation.objects.filter(
            status=GenerationStatus.PROCESSING,
            updated_at__lt=stages_deadline,
            metadata__prompts={},
        ).values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    for generation_id in pending + unprepared:
        with transaction.atomic():
            dispatch_generation(generation_id, now=now, reason="recovery")

    forgotten = list(
        Item.objects.filter(
            status__in=ItemTransition.CLAIM.sources,
            queued_at__lt=lease_start,
            generation__status=GenerationStatus.PROCESSING,
        )
        # Items of a generation whose stages never finished have no prompt yet; the
        # generation's own redispatch above renders them once the stages are done.
        .exclude(generation__metadata__prompts={})
        .values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    dispatch_items(forgotten)

    unfinalised = _unfinalised_generations(now, lease_start)
    for generation_id in unfinalised:
        finalise_if_ended(generation_id=generation_id, now=now)
    return {
        "requeued_items": len(requeued),
        "lost_items": lost,
        "redispatched_generations": len(pending) + len(unprepared),
        "redispatched_items": len(forgotten),
        "finalised_generations": len(unfinalised),
    }


def _unfinalised_generations(now: datetime, lease_start: datetime) -> list[UUID]:
    """Generations whose last item ended but whose worker died before deciding the final
    status: still processing or cancelling with every item ended, or cancelled (recently:
    older ones were swept before) with a variant still active."""
    ended = Generation.objects.filter(
        status__in=GenerationTransition.END.sources | GenerationTransition.SETTLE.sources,
        updated_at__lt=lease_start,
        total_items__lte=F("completed_items") + F("failed_items") + F("cancelled_items"),
    )
    cancelled = Generation.objects.filter(
        status=GenerationStatus.CANCELLED,
        updated_at__lt=lease_start,
        updated_at__gte=lease_start - timedelta(days=1),
        variants__status__in=ACTIVE_GENERATION_STATUSES,
    )
    ids = list(ended.values_list("id", flat=True)[:RECOVERY_BATCH_SIZE])
    ids += cancelled.values_list("id", flat=True).distinct()[:RECOVERY_BATCH_SIZE]
    return ids
