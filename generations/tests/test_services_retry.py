"""Tests for `generation_retry`: only the items that did not complete run again."""

import pytest

from generations import dispatch
from generations.errors import ActionRefused, ErrorCode, GenerationError
from generations.models import Generation, Item, Variant
from generations.pipeline.lifecycle import (
    item_claim,
    item_complete,
    item_fail,
    item_stop_cancelled,
)
from generations.pipeline.prepare import generation_fail_unrendered, generation_prepare
from generations.pipeline.render import item_render
from generations.services import (
    generation_cancel,
    generation_delete,
    generation_retry,
)
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import (
    create_video,
    item_of,
    item_result,
    processing_video,
    run_pipeline,
    variant_status_by_label,
    variant_statuses,
)

pytestmark = pytest.mark.django_db


def _completed_facts(generation):
    return {
        (item.variant.label, item.number): (
            item.attempts,
            item.completed_at,
            item.checksum,
            item.asset_key,
            item.started_at,
        )
        for item in Item.objects.filter(
            generation=generation, status=ItemStatus.COMPLETED
        ).select_related("variant")
    }


def test_retry_keeps_successful_items(owner, produced):
    generation = run_pipeline(create_video(owner, fail_items=["soft:2"]))
    assert generation.status == GenerationStatus.PARTIAL_SUCCESS
    assert (generation.completed_items, generation.failed_items) == (3, 1)
    before = _completed_facts(generation)
    assert len(before) == 3
    produced.clear()

    queued = generation_retry(generation=generation)

    assert queued == 1
    retried = item_of(generation, "soft", 2)
    assert retried.status == ItemStatus.QUEUED
    assert retried.error_code == ""
    assert retried.completed_at is None
    assert retried.claim_token == ""

    generation = run_pipeline(generation)

    assert produced == [("soft", 2)]
    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.completed_items, generation.failed_items) == (4, 0)
    assert generation.error_code == ""
    after = _completed_facts(generation)
    assert {ref: after[ref] for ref in before} == before
    retried.refresh_from_db()
    assert retried.attempts == 2
    assert retried.checksum
    assert variant_statuses(generation) == {GenerationStatus.COMPLETED}


def test_retry_adjusts_counters(owner):
    generation = run_pipeline(create_video(owner, fail_items=["soft:1", "bold:2"]))
    assert (generation.completed_items, generation.failed_items) == (2, 2)

    generation_retry(generation=generation)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert (generation.completed_items, generation.failed_items, generation.cancelled_items) == (
        2,
        0,
        0,
    )
    assert generation.pending_items == 2
    assert generation.completed_at is None
    assert generation.error_code == generation.error_message == ""
    for variant in Variant.objects.filter(generation=generation):
        assert variant.status == GenerationStatus.PROCESSING
        assert (variant.completed_items, variant.failed_items) == (1, 0)
        assert variant.completed_at is None
        assert variant.error_code == ""


def test_retry_enqueues_the_generation_after_commit(
    owner, sent, django_capture_on_commit_callbacks
):
    generation = run_pipeline(create_video(owner, fail_items=["bold:1"]))

    with django_capture_on_commit_callbacks(execute=True):
        generation_retry(generation=generation)

    assert sent == [(dispatch.RUN_GENERATION, generation.id, None)]


def test_retry_runs_failed_and_cancelled_items(owner):
    generation = create_video(owner, fail_items=["soft:1"])
    generation_prepare(generation_id=generation.id)
    item_render(item_id=item_of(generation, "soft", 1).id, claim_token="w1")
    generation = generation_cancel(generation=generation)
    assert (generation.failed_items, generation.cancelled_items) == (1, 3)

    assert generation_retry(generation=generation) == 4

    generation.refresh_from_db()
    assert (generation.failed_items, generation.cancelled_items) == (0, 0)
    assert generation.status == GenerationStatus.PROCESSING
    generation = run_pipeline(generation)
    assert generation.status == GenerationStatus.COMPLETED
    assert generation.completed_items == 4


def test_retry_of_cancelled_pending_generation_runs_it(owner):
    generation = generation_cancel(generation=create_video(owner))

    assert generation_retry(generation=generation) == 4

    generation.refresh_from_db()
    assert generation.started_at is not None
    generation = run_pipeline(generation)
    assert generation.status == GenerationStatus.COMPLETED
    assert generation.completed_items == 4
    assert generation.metadata.prompts


def test_retried_generation_ends_with_every_variant_completed(owner):
    """An item that finished after the cancel leaves its variant cancelled ("a cancel
    wins"); once the retry completes every item, no variant may still say cancelled."""
    generation = create_video(owner, variants=["soft", "bold"], scenes_per_variant=1)
    generation_prepare(generation_id=generation.id)
    item = item_claim(item_id=item_of(generation, "soft", 1).id, claim_token="w1")
    generation_cancel(generation=generation)
    item_complete(item=item, claim_token="w1", result=item_result(item))
    generation.refresh_from_db()
    assert (generation.completed_items, generation.cancelled_items) == (1, 1)

    generation_retry(generation=generation)
    generation = run_pipeline(generation)

    assert generation.status == GenerationStatus.COMPLETED
    assert variant_status_by_label(generation) == {
        "soft": GenerationStatus.COMPLETED,
        "bold": GenerationStatus.COMPLETED,
    }


def test_generation_time_accumulates_across_runs(owner):
    generation = run_pipeline(create_video(owner, fail_items=["soft:1"]))
    first_run = generation.generation_time_seconds
    assert first_run > 0

    generation_retry(generation=generation)
    generation = run_pipeline(generation)

    second_run = (generation.completed_at - generation.started_at).total_seconds()
    assert second_run > 0
    assert generation.generation_time_seconds == pytest.approx(first_run + second_run)


def test_retry_refused_for_completed(owner):
    generation = run_pipeline(create_video(owner, variants=["soft"], scenes_per_variant=1))
    assert generation.status == GenerationStatus.COMPLETED

    with pytest.raises(ActionRefused, match="completed generation has nothing to retry"):
        generation_retry(generation=generation)


def test_retry_refused_for_pending(owner):
    generation = create_video(owner)

    with pytest.raises(ActionRefused, match="pending generation"):
        generation_retry(generation=generation)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PENDING


def test_retry_refused_for_processing(owner):
    generation = processing_video(owner)

    with pytest.raises(ActionRefused, match="processing generation"):
        generation_retry(generation=generation)


def test_retry_refused_in_the_trash(owner):
    generation = run_pipeline(create_video(owner, fail_items=["soft:1"]))
    generation = generation_delete(generation=generation)

    with pytest.raises(ActionRefused, match="trash"):
        generation_retry(generation=generation)

    assert item_of(generation, "soft", 1).status == ItemStatus.FAILED


def test_retry_refused_while_an_item_is_still_stopping(owner):
    generation = create_video(owner)
    generation_prepare(generation_id=generation.id)
    running = item_claim(item_id=item_of(generation, "soft", 1).id, claim_token="w1")
    generation = generation_cancel(generation=generation)

    with pytest.raises(ActionRefused, match="still stopping"):
        generation_retry(generation=generation)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLING
    assert generation.cancelled_items == 3
    assert Item.objects.filter(generation=generation, status=ItemStatus.CANCELLED).count() == 3

    item_stop_cancelled(item=running, claim_token="w1")
    generation.refresh_from_db()
    assert generation_retry(generation=generation) == 4


def test_retry_refused_when_every_item_completed(owner):
    generation = create_video(owner, variants=["soft"], scenes_per_variant=1)
    generation_prepare(generation_id=generation.id)
    item = item_claim(item_id=item_of(generation, "soft", 1).id, claim_token="w1")
    generation_cancel(generation=generation)
    item_complete(item=item, claim_token="w1", result=item_result(item))
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED

    with pytest.raises(ActionRefused, match="nothing to retry"):
        generation_retry(generation=generation)

    assert Generation.objects.get(id=generation.id).status == GenerationStatus.CANCELLED


def test_retry_leaves_items_whose_input_was_refused(owner):
    generation = create_video(owner, variants=["soft"], scenes_per_variant=2)
    generation_fail_unrendered(
        generation_id=generation.id,
        error=GenerationError(ErrorCode.INVALID_INPUT, "The source is not a video."),
    )
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED

    with pytest.raises(ActionRefused, match="edit and regenerate"):
        generation_retry(generation=generation)

    assert Item.objects.filter(generation=generation, status=ItemStatus.FAILED).count() == 2


def test_retry_runs_the_retryable_failures_beside_refused_ones(owner):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=2)
    first, second = Item.objects.filter(generation=generation).order_by("number")
    fail_with(first, GenerationError(ErrorCode.INVALID_INPUT, "Refused input."))
    fail_with(second, GenerationError(ErrorCode.PROVIDER_REJECTED, "Refused by the provider."))
    generation.refresh_from_db()

    assert generation_retry(generation=generation) == 1

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (ItemStatus.FAILED, ItemStatus.QUEUED)


def fail_with(item, error):
    claimed = item_claim(item_id=item.id, claim_token=f"w-{item.id}")
    item_fail(item=claimed, claim_token=f"w-{item.id}", error=error)
