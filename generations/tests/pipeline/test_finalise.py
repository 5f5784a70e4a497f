"""Tests for `generations.pipeline.finalise`: each variant and the generation are decided
once, from their counters, with an error summary, the running time and the evaluation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, GenerationMetadata, Variant
from generations.pipeline.finalise import finalise_if_ended
from generations.pipeline.lifecycle import item_claim, item_complete, item_stop_cancelled
from generations.services import generation_cancel
from generations.states import GenerationStatus
from generations.tests.pipeline.claims import complete, fail, items_in_order
from generations.tests.pipeline_helpers import (
    ITEM_COST,
    assert_counters_match_items,
    item_result,
    processing_video,
    variant_status_by_label,
    variant_statuses,
)

pytestmark = pytest.mark.django_db


# Final status ----------------------------------------------------------------------------


def _assert_ended_as(generation, status):
    """Reload `generation`: it ended with `status`, an end time and its running time."""
    generation.refresh_from_db()
    assert generation.status == status
    assert generation.completed_at is not None
    assert generation.generation_time_seconds > 0


def test_all_completed_ends_completed(owner, evaluations):
    generation = processing_video(owner)
    items = items_in_order(generation)
    for item in items[:-1]:
        complete(item)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert generation.completed_at is None
    assert GenerationMetadata.objects.get(generation=generation).evaluation == {}
    assert evaluations == []

    complete(items[-1])

    _assert_ended_as(generation, GenerationStatus.COMPLETED)
    assert generation.error_code == generation.error_message == ""
    assert generation.actual_cost == ITEM_COST * 4
    assert evaluations == [generation.id]
    assert variant_statuses(generation) == {GenerationStatus.COMPLETED}
    assert all(
        variant.completed_at is not None
        for variant in Variant.objects.filter(generation=generation)
    )
    assert_counters_match_items(generation)


def test_some_failed_ends_partial_success(owner):
    generation = processing_video(owner)
    soft_1, soft_2, bold_1, bold_2 = items_in_order(generation)
    complete(soft_1)
    complete(soft_2)
    complete(bold_1)
    fail(bold_2)

    _assert_ended_as(generation, GenerationStatus.PARTIAL_SUCCESS)
    assert generation.error_code == ErrorCode.PROVIDER_REJECTED
    assert generation.error_message.startswith("1 item(s) failed.")
    assert variant_status_by_label(generation) == {
        "soft": GenerationStatus.COMPLETED,
        "bold": GenerationStatus.PARTIAL_SUCCESS,
    }
    assert_counters_match_items(generation)


def test_none_completed_ends_failed(owner):
    generation = processing_video(owner)
    items = items_in_order(generation)
    fail(items[0], error=GenerationError(ErrorCode.INTERNAL, "Boom."))
    for item in items[1:]:
        fail(item)

    _assert_ended_as(generation, GenerationStatus.FAILED)
    assert generation.error_code == ErrorCode.PROVIDER_REJECTED
    assert generation.error_message.startswith("4 item(s) failed.")
    assert variant_statuses(generation) == {GenerationStatus.FAILED}
    assert_counters_match_items(generation)


def test_cancel_wins_over_completed_items(owner, evaluations):
    generation = processing_video(owner)
    items = items_in_order(generation)
    complete(items[0])
    running = [item_claim(item_id=item.id, claim_token="w1") for item in items[1:]]
    generation_cancel(generation=generation)

    for item in running:
        item_stop_cancelled(item=item, claim_token="w1")

    _assert_ended_as(generation, GenerationStatus.CANCELLED)
    assert (generation.completed_items, generation.cancelled_items) == (1, 3)
    assert variant_statuses(generation) == {GenerationStatus.CANCELLED}
    assert_counters_match_items(generation)


def test_final_status_is_decided_once(owner, evaluations):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=1)
    item = complete(items_in_order(generation)[0])
    generation.refresh_from_db()
    decided = (generation.status, generation.completed_at, generation.generation_time_seconds)

    # A late duplicate of the last event, and a second roll-up, change nothing.
    assert not item_complete(item=item, claim_token="w1", result=item_result(item))
    finalise_if_ended(
        generation_id=generation.id,
        variant_ids=[item.variant_id],
        now=timezone.now() + timedelta(hours=1),
    )

    generation.refresh_from_db()
    assert (
        generation.status,
        generation.completed_at,
        generation.generation_time_seconds,
    ) == decided
    assert evaluations == [generation.id]
    variant = Variant.objects.get(id=item.variant_id)
    assert variant.completed_at <= decided[1]


def test_evaluation_is_saved_at_the_end(owner):
    generation = processing_video(owner)
    soft_1, soft_2, bold_1, bold_2 = items_in_order(generation)
    complete(soft_1)
    complete(soft_2)
    complete(bold_1)
    assert GenerationMetadata.objects.get(generation=generation).evaluation == {}

    fail(bold_2)

    evaluation = GenerationMetadata.objects.get(generation=generation).evaluation
    assert evaluation["success_rate"] == 0.75
    assert evaluation["failure_codes"] == {ErrorCode.PROVIDER_REJECTED: 1}
    assert evaluation["variants"]["soft"] == {
        "completed": 2,
        "failed": 0,
        "cancelled": 0,
        "duration_seconds": 2.0,
        "bytes": 2000,
    }
    assert evaluation["variants"]["bold"]["completed"] == 1
    assert evaluation["variants"]["bold"]["failed"] == 1
    assert evaluation["durations_on_target"] is True
    assert evaluation["off_target_items"] == []


# Running time ----------------------------------------------------------------------------


def test_running_time_adds_earlier_runs():
    now = timezone.now()
    generation = Generation(started_at=now - timedelta(seconds=10), generation_time_seconds=5.0)

    assert generation.elapsed_seconds(now) == pytest.approx(15.0)
    assert Generation(generation_time_seconds=5.0).elapsed_seconds(now) == 5.0
    assert Generation().elapsed_seconds(now) == 0.0
    assert Generation(started_at=now + timedelta(seconds=3)).elapsed_seconds(now) == 0.0
