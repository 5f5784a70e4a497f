"""Deciding how variants and a generation end once their last item has ended: the status
from `states.rollup_status`, an error summary, the running time and the evaluation."""

from collections import Counter
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.db.models import QuerySet

from generations.events import event_record
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.pipeline.evaluation import evaluation_of
from generations.pipeline.statements import Counters
from generations.states import (
    CANCEL_REQUESTED_STATUSES,
    ENDING_EVENTS,
    GenerationStatus,
    ItemStatus,
    rollup_status,
    sources_of,
)


def finalise_if_ended(
    *, generation_id: UUID, variant_ids: list[UUID] | None = None, now: datetime
) -> None:
    """Decide the final status of the given variants (all of them when None) and of the
    generation if their last item has ended. Holds their rows locked (variants, then the
    generation: the order the counting statements take them in) so that each is decided
    exactly once, however many callers race here. Safe to call again: an ended row is
    left as it is."""
    chosen = Variant.objects.filter(generation_id=generation_id)
    if variant_ids is not None:
        chosen = chosen.filter(id__in=variant_ids)
    with transaction.atomic():
        variants = list(chosen.select_for_update().order_by("id"))
        generation = Generation.objects.select_for_update().get(id=generation_id)
        cancel_requested = generation.status in CANCEL_REQUESTED_STATUSES
        for variant in variants:
            counters = _counters_of(variant)
            status = _rollup(counters, cancel_requested)
            if status is not None and variant.status in sources_of(status):
                _decide_variant(variant.id, counters, status, now)
        _finalise_generation(generation, cancel_requested=cancel_requested, now=now)


def finalise_variant(
    variant_id: UUID, counters: Counters, *, cancel_requested: bool, now: datetime
) -> None:
    """Decide a variant's final status from its counters, if they say it has ended."""
    status = _rollup(counters, cancel_requested)
    if status is not None:
        _decide_variant(variant_id, counters, status, now)


def _decide_variant(variant_id: UUID, counters: Counters, status: str, now: datetime) -> None:
    """The UPDATE matches only while the variant may still move to `status` with these
    very counters, so a variant is decided once, and never from counters a retry has
    reset since."""
    _, completed, failed, cancelled = counters
    code, message = ("", "")
    if failed:
        code, message = _failure_summary(Item.objects.filter(variant_id=variant_id))
    Variant.objects.filter(
        id=variant_id,
        status__in=sources_of(status),
        completed_items=completed,
        failed_items=failed,
        cancelled_items=cancelled,
    ).update(
        status=status,
        completed_at=now,
        updated_at=now,
        error_code=code,
        error_message=message,
    )


def _finalise_generation(generation: Generation, *, cancel_requested: bool, now: datetime) -> None:
    generation_id = generation.id
    status = _rollup(_counters_of(generation), cancel_requested)
    if status is None:
        return
    if generation.status in sources_of(status):
        code, message = ("", "")
        if generation.failed_items:
            code, message = _failure_summary(Item.objects.filter(generation_id=generation_id))
        if Generation.objects.filter(id=generation_id, status__in=sources_of(status)).update(
            status=status,
            completed_at=now,
            updated_at=now,
            generation_time_seconds=generation.elapsed_seconds(now),
            error_code=code,
            error_message=message,
        ):
            event_record(
                generation_id,
                ENDING_EVENTS[status],
                payload={
                    "completed_items": generation.completed_items,
                    "failed_items": generation.failed_items,
                    "cancelled_items": generation.cancelled_items,
                    "error_code": code,
                },
                now=now,
            )
    elif generation.status != GenerationStatus.CANCELLED:
        return
    # A cancelled generation ended earlier; its evaluation waits for its last item.
    GenerationMetadata.objects.filter(generation_id=generation_id).update(
        evaluation=evaluation_of(generation_id), updated_at=now
    )


def _rollup(counters: Counters, cancel_requested: bool) -> GenerationStatus | None:
    total, completed, failed, cancelled = counters
    return rollup_status(
        total=total,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        cancel_requested=cancel_requested,
    )


def _counters_of(row: Generation | Variant) -> Counters:
    return row.total_items, row.completed_items, row.failed_items, row.cancelled_items


def _failure_summary(items: QuerySet[Item]) -> tuple[str, str]:
    """The most frequent error code among failed items, and a message counting them."""
    failed = list(items.filter(status=ItemStatus.FAILED).values_list("error_code", "error_message"))
    if not failed:
        return "", ""
    codes = Counter(code for code, _ in failed)
    code = codes.most_common(1)[0][0]
    example = next(message for failed_code, message in failed if failed_code == code)
    return code, f"{len(failed)} item(s) failed. {example}"
