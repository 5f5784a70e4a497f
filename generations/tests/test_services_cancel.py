"""Tests for `generation_cancel`: queued items end at once, running ones at their next
checkpoint, and the counters always add up."""

import pytest

from generations import pipeline
from generations.errors import ActionRefused, ErrorCode
from generations.models import Generation, Scene, Variant
from generations.progress import scene_claim, scene_complete, scene_stop_cancelled
from generations.services import generation_cancel
from generations.states import GenerationStatus, SceneStatus
from generations.tests.factories import GenerationFactory
from generations.tests.pipeline_helpers import (
    SCENE_COST,
    assert_counters_match_scenes,
    create_video,
    processing_video,
    scene_of,
    scene_result,
    scene_statuses,
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
    for scene in Scene.objects.filter(generation=generation):
        assert scene.status == SceneStatus.CANCELLED
        assert scene.error_code == ErrorCode.CANCELLED
        assert scene.completed_at is not None
        assert scene.attempts == 0
    for variant in Variant.objects.filter(generation=generation):
        assert variant.status == GenerationStatus.CANCELLED
        assert variant.scenes_cancelled == 2
        assert variant.completed_at is not None
    assert_counters_match_scenes(generation)


def test_cancel_enqueues_nothing(owner, sent, django_capture_on_commit_callbacks):
    generation = create_video(owner)

    with django_capture_on_commit_callbacks(execute=True):
        generation_cancel(generation=generation)

    assert sent == []


def test_cancelled_pending_generation_is_never_prepared(owner):
    generation = create_video(owner)
    generation_cancel(generation=generation)

    assert pipeline.generation_prepare(generation_id=generation.id) == []

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
    assert_counters_match_scenes(generation)


def test_running_scene_keeps_running_and_is_counted_when_it_stops(owner):
    generation = processing_video(owner)
    running = scene_of(generation, "soft", 1)
    assert scene_claim(scene_id=running.id, claim_token="worker-1") is not None

    cancelled = generation_cancel(generation=generation)

    running.refresh_from_db()
    assert running.status == SceneStatus.PROCESSING
    assert cancelled.status == GenerationStatus.CANCELLED
    assert cancelled.cancelled_items == 3
    assert cancelled.pending_items == 1
    assert cancelled.completed_at is not None
    assert cancelled.generation_time_seconds > 0
    assert variant_status_by_label(generation) == {
        "soft": GenerationStatus.PROCESSING,
        "bold": GenerationStatus.CANCELLED,
    }
    assert_counters_match_scenes(generation)
    time_at_cancel = cancelled.generation_time_seconds
    completed_at = cancelled.completed_at

    scene_stop_cancelled(scene=running, claim_token="worker-1")

    generation.refresh_from_db()
    running.refresh_from_db()
    assert running.status == SceneStatus.CANCELLED
    assert running.error_code == ErrorCode.CANCELLED
    assert generation.status == GenerationStatus.CANCELLED
    assert generation.cancelled_items == 4
    assert generation.pending_items == 0
    assert generation.generation_time_seconds == time_at_cancel
    assert generation.completed_at == completed_at
    soft = Variant.objects.get(generation=generation, label="soft")
    assert soft.status == GenerationStatus.CANCELLED
    assert soft.scenes_cancelled == 2
    assert_counters_match_scenes(generation)


def test_stopping_twice_counts_once(owner):
    generation = processing_video(owner)
    running = scene_of(generation, "soft", 1)
    scene_claim(scene_id=running.id, claim_token="worker-1")
    generation_cancel(generation=generation)

    scene_stop_cancelled(scene=running, claim_token="worker-1")
    scene_stop_cancelled(scene=running, claim_token="worker-1")

    generation.refresh_from_db()
    assert generation.cancelled_items == 4
    assert_counters_match_scenes(generation)


def test_running_scene_finishing_after_cancel_is_counted_completed(owner):
    generation = processing_video(owner)
    running = scene_of(generation, "soft", 1)
    scene = scene_claim(scene_id=running.id, claim_token="worker-1")
    generation_cancel(generation=generation)

    assert scene_complete(scene=scene, claim_token="worker-1", result=scene_result(scene))

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert (generation.completed_items, generation.cancelled_items) == (1, 3)
    assert generation.actual_cost == SCENE_COST
    assert variant_statuses(generation) == {GenerationStatus.CANCELLED}
    assert_counters_match_scenes(generation)


def test_cancel_keeps_completed_scenes(owner):
    generation = processing_video(owner)
    done = scene_of(generation, "soft", 1)
    pipeline.scene_render(scene_id=done.id, claim_token="worker-1")

    result = generation_cancel(generation=generation)

    done.refresh_from_db()
    assert done.status == SceneStatus.COMPLETED
    assert done.asset_key
    assert (result.completed_items, result.cancelled_items) == (1, 3)
    assert result.status == GenerationStatus.CANCELLED
    assert_counters_match_scenes(generation)


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

    assert scene_statuses(generation) == {SceneStatus.QUEUED}
    assert not Variant.objects.filter(generation=generation, scenes_cancelled__gt=0).exists()
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED
    assert generation.cancelled_items == 0
