"""Tests for `generation_cancel`: queued items end at once, running ones at their next
checkpoint, and the counters always add up."""

import pytest

from generations.errors import ActionRefused, ErrorCode
from generations.models import Generation, Item, Variant
from generations.pipeline.lifecycle import item_claim, item_complete, item_stop_cancelled
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.render import item_render
from generations.services import generation_cancel
from generations.states import GenerationStatus, ItemStatus
from generations.tests.factories import GenerationFactory
from generations.tests.pipeline_helpers import (
    ITEM_COST,
    assert_counters_match_items,
    create_video,
    item_of,
    item_result,
    item_statuses,
    processing_video,
    variant_status_by_label,
    variant_statuses,
)

pytestmark = pytest.mark.django_db


def test_cancel_pending_cancels_every_item(owner):
    generation = create_video(owner)

    result = generation_cancel(generation=generation)

    assert result.status == GenerationStatus.CANCELLED
    assert result.cancelled_items == 4
    assert result.pending_items == 0
    assert result.completed_at is not None
    assert result.generation_time_seconds == 0.0
    assert result.error_code == ErrorCode.CANCELLED
    for item in Item.objects.filter(generation=generation):
        assert item.status == ItemStatus.CANCELLED
        assert item.error_code == ErrorCode.CANCELLED
        assert item.completed_at is not None
        assert item.attempts == 0
    for variant in Variant.objects.filter(generation=generation):
        assert variant.status == GenerationStatus.CANCELLED
        assert variant.cancelled_items == 2
        assert variant.completed_at is not None
    assert_counters_match_items(generation)


def test_cancel_enqueues_nothing(owner, sent, django_capture_on_commit_callbacks):
    generation = create_video(owner)

    with django_capture_on_commit_callbacks(execute=True):
        generation_cancel(generation=generation)

    assert sent == []


def test_cancelled_pending_generation_is_never_prepared(owner):
    generation = create_video(owner)
    generation_cancel(generation=generation)

    assert generation_prepare(generation_id=generation.id) == []

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert generation.started_at is None
    assert generation.metadata.prompts == {}


def test_cancel_processing_cancels_queued_items_now(owner):
    generation = processing_video(owner)

    result = generation_cancel(generation=generation)

    assert result.status == GenerationStatus.CANCELLED
    assert result.cancelled_items == 4
    assert result.generation_time_seconds > 0
    assert variant_statuses(generation) == {GenerationStatus.CANCELLED}
    assert_counters_match_items(generation)


def test_a_cancel_settles_once_the_running_item_stops(owner):
    """While an item still runs the generation is cancelling, with no end time; it is
    cancelled, its counters final, only once that item has stopped."""
    generation = processing_video(owner)
    running = item_of(generation, "soft", 1)
    assert item_claim(item_id=running.id, claim_token="worker-1") is not None

    cancelling = generation_cancel(generation=generation)

    running.refresh_from_db()
    assert running.status == ItemStatus.PROCESSING
    assert cancelling.status == GenerationStatus.CANCELLING
    assert cancelling.cancelled_items == 3
    assert cancelling.pending_items == 1
    assert cancelling.completed_at is None
    assert cancelling.generation_time_seconds is None
    assert variant_status_by_label(generation) == {
        "soft": GenerationStatus.PROCESSING,
        "bold": GenerationStatus.CANCELLED,
    }
    assert_counters_match_items(generation)

    item_stop_cancelled(item=running, claim_token="worker-1")

    generation.refresh_from_db()
    running.refresh_from_db()
    assert running.status == ItemStatus.CANCELLED
    assert running.error_code == ErrorCode.CANCELLED
    assert generation.status == GenerationStatus.CANCELLED
    assert generation.cancelled_items == 4
    assert generation.pending_items == 0
    assert generation.completed_at is not None
    assert generation.generation_time_seconds > 0
    soft = Variant.objects.get(generation=generation, label="soft")
    assert soft.status == GenerationStatus.CANCELLED
    assert soft.cancelled_items == 2
    assert_counters_match_items(generation)


def test_a_cancel_with_nothing_running_is_final_at_once(owner):
    generation = processing_video(owner)

    cancelled = generation_cancel(generation=generation)

    assert cancelled.status == GenerationStatus.CANCELLED
    assert cancelled.pending_items == 0
    assert cancelled.completed_at is not None
    assert cancelled.generation_time_seconds is not None
    assert_counters_match_items(generation)


def test_a_cancelling_generation_cannot_be_cancelled_again(owner):
    generation = processing_video(owner)
    item_claim(item_id=item_of(generation, "soft", 1).id, claim_token="worker-1")
    generation = generation_cancel(generation=generation)

    with pytest.raises(ActionRefused, match="already cancelling"):
        generation_cancel(generation=generation)


def test_stopping_twice_counts_once(owner):
    generation = processing_video(owner)
    running = item_of(generation, "soft", 1)
    item_claim(item_id=running.id, claim_token="worker-1")
    generation_cancel(generation=generation)

    item_stop_cancelled(item=running, claim_token="worker-1")
    item_stop_cancelled(item=running, claim_token="worker-1")

    generation.refresh_from_db()
    assert generation.cancelled_items == 4
    assert_counters_match_items(generation)


def test_running_item_finishing_after_cancel_is_counted_completed(owner):
    generation = processing_video(owner)
    running = item_of(generation, "soft", 1)
    item = item_claim(item_id=running.id, claim_token="worker-1")
    generation_cancel(generation=generation)

    assert item_complete(item=item, claim_token="worker-1", result=item_result(item))

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert (generation.completed_items, generation.cancelled_items) == (1, 3)
    assert generation.actual_cost == ITEM_COST
    assert variant_statuses(generation) == {GenerationStatus.CANCELLED}
    assert_counters_match_items(generation)


def test_cancel_keeps_completed_items(owner):
    generation = processing_video(owner)
    done = item_of(generation, "soft", 1)
    item_render(item_id=done.id, claim_token="worker-1")

    result = generation_cancel(generation=generation)

    done.refresh_from_db()
    assert done.status == ItemStatus.COMPLETED
    assert done.asset_key
    assert (result.completed_items, result.cancelled_items) == (1, 3)
    assert result.status == GenerationStatus.CANCELLED
    assert_counters_match_items(generation)


@pytest.mark.parametrize(
    "status",
    [
        GenerationStatus.COMPLETED,
        GenerationStatus.PARTIAL_SUCCESS,
        GenerationStatus.FAILED,
        GenerationStatus.CANCELLED,
    ],
)
def test_cancel_refused_once_ended(status):
    generation = GenerationFactory(status=status)

    with pytest.raises(ActionRefused, match="only pending or processing"):
        generation_cancel(generation=generation)

    generation.refresh_from_db()
    assert generation.status == status


def test_cancel_twice_is_refused(owner):
    generation = create_video(owner)
    generation_cancel(generation=generation)

    with pytest.raises(ActionRefused):
        generation_cancel(generation=generation)

    generation.refresh_from_db()
    assert generation.cancelled_items == 4


def test_cancel_refused_when_it_ended_meanwhile_changes_nothing(owner):
    generation = processing_video(owner)
    stale = Generation.objects.get(id=generation.id)
    # Another process ended it after `stale` was loaded.
    Generation.objects.filter(id=generation.id).update(status=GenerationStatus.FAILED)

    with pytest.raises(ActionRefused, match="ended before"):
        generation_cancel(generation=stale)

    assert item_statuses(generation) == {ItemStatus.QUEUED}
    assert not Variant.objects.filter(generation=generation, cancelled_items__gt=0).exists()
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED
    assert generation.cancelled_items == 0
