"""Tests for `generation_cancel`: queued items end at once, running ones at their next
checkpoint, and the counters always add up."""

from decimal import Decimal

import pytest

from generations import pipeline
from generations.errors import ActionRefused, ErrorCode
from generations.models import Generation, Scene, Variant
from generations.progress import SceneResult, scene_claim, scene_complete, scene_stop_cancelled
from generations.services import generation_cancel, generation_create
from generations.states import GenerationStatus, SceneStatus
from generations.tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db

SMALL_VIDEO = {
    "prompt": "A bright kitchen, a family cooking pasta together",
    "variants": ["soft", "bold"],
    "scenes_per_variant": 2,
    "scene_seconds": 1,
    "width": 160,
    "height": 90,
    "fps": 12,
}


def _create(owner, **overrides):
    return generation_create(owner=owner, kind="video_ad", input={**SMALL_VIDEO, **overrides})


def _started(owner, **overrides):
    generation = _create(owner, **overrides)
    pipeline.generation_prepare(generation_id=generation.id)
    generation.refresh_from_db()
    return generation


def _scene(generation, label, number):
    return Scene.objects.get(generation=generation, variant__label=label, number=number)


def _fake_result(scene):
    return SceneResult(
        asset_key=f"generations/{scene.generation_id}/x/scene_{scene.number}.mp4",
        thumbnail_key="",
        content_type="video/mp4",
        file_size=10,
        checksum="0" * 64,
        duration_seconds=1.0,
        width=160,
        height=90,
        cost=Decimal("0.0100"),
        provider_job_id="job",
        provider_status="succeeded",
    )


def _assert_counters_add_up(generation):
    generation.refresh_from_db()
    scenes = Scene.objects.filter(generation=generation)
    assert generation.completed_items == scenes.filter(status=SceneStatus.COMPLETED).count()
    assert generation.failed_items == scenes.filter(status=SceneStatus.FAILED).count()
    assert generation.cancelled_items == scenes.filter(status=SceneStatus.CANCELLED).count()
    for variant in Variant.objects.filter(generation=generation):
        mine = scenes.filter(variant=variant)
        assert variant.scenes_completed == mine.filter(status=SceneStatus.COMPLETED).count()
        assert variant.scenes_failed == mine.filter(status=SceneStatus.FAILED).count()
        assert variant.scenes_cancelled == mine.filter(status=SceneStatus.CANCELLED).count()


def test_cancel_pending_cancels_every_item(owner):
    generation = _create(owner)

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
    _assert_counters_add_up(generation)


def test_cancel_enqueues_nothing(owner, sent, django_capture_on_commit_callbacks):
    generation = _create(owner)

    with django_capture_on_commit_callbacks(execute=True):
        generation_cancel(generation=generation)

    assert sent == []


def test_cancelled_pending_generation_is_never_prepared(owner):
    generation = _create(owner)
    generation_cancel(generation=generation)

    assert pipeline.generation_prepare(generation_id=generation.id) == []

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert generation.started_at is None
    assert generation.metadata.prompts == {}


def test_cancel_processing_cancels_queued_items_now(owner):
    generation = _started(owner)

    result = generation_cancel(generation=generation)

    assert result.status == GenerationStatus.CANCELLED
    assert result.cancelled_items == 4
    assert result.generation_time_seconds > 0
    assert set(Variant.objects.filter(generation=generation).values_list("status", flat=True)) == {
        GenerationStatus.CANCELLED
    }
    _assert_counters_add_up(generation)


def test_running_scene_keeps_running_and_is_counted_when_it_stops(owner):
    generation = _started(owner)
    running = _scene(generation, "soft", 1)
    assert scene_claim(scene_id=running.id, claim_token="worker-1") is not None

    cancelled = generation_cancel(generation=generation)

    running.refresh_from_db()
    assert running.status == SceneStatus.PROCESSING
    assert cancelled.status == GenerationStatus.CANCELLED
    assert cancelled.cancelled_items == 3
    assert cancelled.pending_items == 1
    assert cancelled.completed_at is not None
    assert cancelled.generation_time_seconds > 0
    assert Variant.objects.get(generation=generation, label="soft").status == (
        GenerationStatus.PROCESSING
    )
    assert Variant.objects.get(generation=generation, label="bold").status == (
        GenerationStatus.CANCELLED
    )
    _assert_counters_add_up(generation)
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
    _assert_counters_add_up(generation)


def test_stopping_twice_counts_once(owner):
    generation = _started(owner)
    running = _scene(generation, "soft", 1)
    scene_claim(scene_id=running.id, claim_token="worker-1")
    generation_cancel(generation=generation)

    scene_stop_cancelled(scene=running, claim_token="worker-1")
    scene_stop_cancelled(scene=running, claim_token="worker-1")

    generation.refresh_from_db()
    assert generation.cancelled_items == 4
    _assert_counters_add_up(generation)


def test_running_scene_finishing_after_cancel_is_counted_completed(owner):
    generation = _started(owner)
    running = _scene(generation, "soft", 1)
    scene = scene_claim(scene_id=running.id, claim_token="worker-1")
    generation_cancel(generation=generation)

    assert scene_complete(scene=scene, claim_token="worker-1", result=_fake_result(scene))

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert (generation.completed_items, generation.cancelled_items) == (1, 3)
    assert generation.actual_cost == Decimal("0.0100")
    assert set(Variant.objects.filter(generation=generation).values_list("status", flat=True)) == {
        GenerationStatus.CANCELLED
    }
    _assert_counters_add_up(generation)


def test_cancel_keeps_completed_scenes(owner):
    generation = _started(owner)
    done = _scene(generation, "soft", 1)
    pipeline.scene_render(scene_id=done.id, claim_token="worker-1")

    result = generation_cancel(generation=generation)

    done.refresh_from_db()
    assert done.status == SceneStatus.COMPLETED
    assert done.asset_key
    assert (result.completed_items, result.cancelled_items) == (1, 3)
    assert result.status == GenerationStatus.CANCELLED
    _assert_counters_add_up(generation)


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
    generation = _create(owner)
    generation_cancel(generation=generation)

    with pytest.raises(ActionRefused):
        generation_cancel(generation=generation)

    generation.refresh_from_db()
    assert generation.cancelled_items == 4


def test_cancel_refused_when_it_ended_meanwhile_changes_nothing(owner):
    generation = _started(owner)
    stale = Generation.objects.get(id=generation.id)
    # Another process ended it after `stale` was loaded.
    Generation.objects.filter(id=generation.id).update(status=GenerationStatus.FAILED)

    with pytest.raises(ActionRefused, match="ended before"):
        generation_cancel(generation=stale)

    assert set(Scene.objects.filter(generation=generation).values_list("status", flat=True)) == {
        SceneStatus.QUEUED
    }
    assert not Variant.objects.filter(generation=generation, scenes_cancelled__gt=0).exists()
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED
    assert generation.cancelled_items == 0
