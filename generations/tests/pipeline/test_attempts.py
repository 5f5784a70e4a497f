"""The attempt log: every attempt at every item is a row, opened by the claim and closed by
whatever ends it, and nothing later (a retry, a recovery, a resume) overwrites it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from generations.errors import ErrorCode
from generations.models import Attempt, Item
from generations.pipeline.lifecycle import (
    item_claim,
    item_complete,
    item_recover_lost,
    item_stop_cancelled,
)
from generations.services import generation_cancel, generation_retry
from generations.states import AttemptOutcome, GenerationStatus, QueueReason
from generations.tests.pipeline.claims import REJECTED, TIMEOUT, complete, fail, items_in_order
from generations.tests.pipeline_helpers import ITEM_COST, item_result, processing_video

pytestmark = pytest.mark.django_db


def _log(item: Item) -> list[tuple[int, str, str, str]]:
    """(number, reason, outcome, error code) of each attempt at `item`, in order."""
    return list(
        Attempt.objects.filter(item=item)
        .order_by("number")
        .values_list("number", "reason", "outcome", "error_code")
    )


def _silence(item: Item, settings) -> None:
    """Its worker has said nothing for longer than the lease."""
    Item.objects.filter(id=item.id).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS + 1)
    )


def test_a_claim_opens_the_first_attempt(owner, counting):
    item = items_in_order(processing_video(owner))[0]

    item_claim(item_id=item.id, claim_token="w1")

    attempt = Attempt.objects.get(item=item)
    assert (attempt.number, attempt.reason, attempt.outcome) == (1, QueueReason.FIRST_RUN, "")
    assert attempt.generation_id == item.generation_id
    assert attempt.queued_at == item.queued_at
    assert attempt.started_at is not None
    assert attempt.ended_at is None
    assert ":" in attempt.worker


def test_a_completion_closes_the_attempt_with_its_cost_and_job(owner, counting):
    item = complete(items_in_order(processing_video(owner))[0])

    attempt = Attempt.objects.get(item=item)
    assert attempt.outcome == AttemptOutcome.COMPLETED
    assert attempt.ended_at is not None
    assert attempt.cost == ITEM_COST
    assert attempt.provider_job_id == f"job-{item.number}"
    assert attempt.retryable is None


def test_a_retried_error_is_kept_and_the_next_attempt_says_why(owner, counting):
    item = items_in_order(processing_video(owner))[0]

    assert fail(item, error=TIMEOUT) is not None
    item.refresh_from_db()
    assert item.queue_reason == QueueReason.AUTOMATIC_RETRY
    complete(item, delivery="w2")

    assert _log(item) == [
        (1, QueueReason.FIRST_RUN, AttemptOutcome.RETRYING, ErrorCode.PROVIDER_TIMEOUT),
        (2, QueueReason.AUTOMATIC_RETRY, AttemptOutcome.COMPLETED, ""),
    ]
    first = Attempt.objects.get(item=item, number=1)
    assert first.retryable is True
    assert first.error_message == TIMEOUT.message


def test_a_permanent_failure_is_closed_as_failed_and_not_retryable(owner, counting):
    item = items_in_order(processing_video(owner))[0]

    fail(item, error=REJECTED)

    attempt = Attempt.objects.get(item=item)
    assert (attempt.outcome, attempt.error_code) == (
        AttemptOutcome.FAILED,
        ErrorCode.PROVIDER_REJECTED,
    )
    assert attempt.retryable is False
    assert attempt.cost == Decimal(0)


def test_a_take_back_by_the_same_message_closes_the_dead_workers_attempt(owner, counting, settings):
    item = items_in_order(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="w1")
    _silence(item, settings)

    assert item_claim(item_id=item.id, claim_token="w1") is not None

    assert _log(item) == [
        (1, QueueReason.FIRST_RUN, AttemptOutcome.LOST, ErrorCode.WORKER_LOST),
        (2, QueueReason.FIRST_RUN, "", ""),
    ]


def test_recovery_closes_the_lost_attempt_and_the_next_one_says_recovery(owner):
    item = items_in_order(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="w1")
    later = timezone.now() + timedelta(seconds=1)

    assert item_recover_lost(item_id=item.id, silent_since=later)
    complete(item, delivery="w2")

    assert _log(item) == [
        (1, QueueReason.FIRST_RUN, AttemptOutcome.LOST, ErrorCode.WORKER_LOST),
        (2, QueueReason.RECOVERY, AttemptOutcome.COMPLETED, ""),
    ]


def test_a_user_retry_keeps_the_failed_attempt(owner):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=1)
    [item] = items_in_order(generation)
    fail(item)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED

    generation_retry(generation=generation)
    complete(item, delivery="w2")

    assert _log(item) == [
        (1, QueueReason.FIRST_RUN, AttemptOutcome.FAILED, ErrorCode.PROVIDER_REJECTED),
        (2, QueueReason.USER_RETRY, AttemptOutcome.COMPLETED, ""),
    ]
    item.refresh_from_db()
    assert item.error_code == ""


def test_running_a_cancelled_generation_again_is_a_resume(owner):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=2)
    first, second = items_in_order(generation)
    claimed = item_claim(item_id=first.id, claim_token="w1")
    generation_cancel(generation=generation)
    item_stop_cancelled(item=claimed, claim_token="w1")
    generation.refresh_from_db()

    generation_retry(generation=generation)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.queue_reason == second.queue_reason == QueueReason.RESUME
    assert _log(first) == [
        (1, QueueReason.FIRST_RUN, AttemptOutcome.CANCELLED, ErrorCode.CANCELLED),
    ]
    assert _log(second) == []


def test_a_completion_of_an_item_taken_away_closes_nothing(owner, settings):
    item = items_in_order(processing_video(owner))[0]
    claimed = item_claim(item_id=item.id, claim_token="w1")
    _silence(item, settings)
    item_claim(item_id=item.id, claim_token="w1")

    assert not item_complete(item=claimed, claim_token="w2", result=item_result(claimed))

    assert _log(item)[-1] == (2, QueueReason.FIRST_RUN, "", "")
