"""Tests for `generation_retry`: only the items that did not complete run again."""

from decimal import Decimal
from uuid import uuid4

import pytest

from generations import dispatch, pipeline
from generations.errors import ActionRefused
from generations.models import Generation, Scene, Variant
from generations.progress import SceneResult, scene_claim, scene_complete, scene_stop_cancelled
from generations.providers.local import LocalProvider
from generations.services import (
    generation_cancel,
    generation_create,
    generation_delete,
    generation_retry,
)
from generations.states import GenerationStatus, SceneStatus

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


@pytest.fixture
def produced(monkeypatch):
    """The (variant label, item number) of every item the provider is asked for."""
    calls = []
    original = LocalProvider.produce

    def produce(self, request):
        calls.append((request.variant_label, request.number))
        return original(self, request)

    monkeypatch.setattr(LocalProvider, "produce", produce)
    return calls


def _create(owner, **overrides):
    return generation_create(owner=owner, kind="video_ad", input={**SMALL_VIDEO, **overrides})


def _run(generation):
    """What the worker does for one delivery of the generation and of each scene."""
    for scene_id in pipeline.generation_prepare(generation_id=generation.id):
        pipeline.scene_render(scene_id=scene_id, claim_token=str(uuid4()))
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


def _completed_facts(generation):
    return {
        (scene.variant.label, scene.number): (
            scene.attempts,
            scene.completed_at,
            scene.checksum,
            scene.asset_key,
            scene.started_at,
        )
        for scene in Scene.objects.filter(
            generation=generation, status=SceneStatus.COMPLETED
        ).select_related("variant")
    }


def test_retry_keeps_successful_scenes(owner, produced):
    generation = _run(_create(owner, fail_scenes=["soft:2"]))
    assert generation.status == GenerationStatus.PARTIAL_SUCCESS
    assert (generation.completed_items, generation.failed_items) == (3, 1)
    before = _completed_facts(generation)
    assert len(before) == 3
    produced.clear()

    queued = generation_retry(generation=generation)

    assert queued == 1
    retried = _scene(generation, "soft", 2)
    assert retried.status == SceneStatus.QUEUED
    assert retried.error_code == ""
    assert retried.completed_at is None
    assert retried.claim_token == ""

    generation = _run(generation)

    assert produced == [("soft", 2)]
    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.completed_items, generation.failed_items) == (4, 0)
    assert generation.error_code == ""
    after = _completed_facts(generation)
    assert {ref: after[ref] for ref in before} == before
    retried.refresh_from_db()
    assert retried.attempts == 2
    assert retried.checksum
    assert set(Variant.objects.filter(generation=generation).values_list("status", flat=True)) == {
        GenerationStatus.COMPLETED
    }


def test_retry_adjusts_counters(owner):
    generation = _run(_create(owner, fail_scenes=["soft:1", "bold:2"]))
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
        assert (variant.scenes_completed, variant.scenes_failed) == (1, 0)
        assert variant.completed_at is None
        assert variant.error_code == ""


def test_retry_enqueues_the_generation_after_commit(
    owner, sent, django_capture_on_commit_callbacks
):
    generation = _run(_create(owner, fail_scenes=["bold:1"]))

    with django_capture_on_commit_callbacks(execute=True):
        generation_retry(generation=generation)

    assert sent == [(dispatch.RUN_GENERATION, generation.id, None)]


def test_retry_runs_failed_and_cancelled_items(owner):
    generation = _create(owner, fail_scenes=["soft:1"])
    pipeline.generation_prepare(generation_id=generation.id)
    pipeline.scene_render(scene_id=_scene(generation, "soft", 1).id, claim_token="w1")
    generation = generation_cancel(generation=generation)
    assert (generation.failed_items, generation.cancelled_items) == (1, 3)

    assert generation_retry(generation=generation) == 4

    generation.refresh_from_db()
    assert (generation.failed_items, generation.cancelled_items) == (0, 0)
    assert generation.status == GenerationStatus.PROCESSING
    generation = _run(generation)
    assert generation.status == GenerationStatus.COMPLETED
    assert generation.completed_items == 4


def test_retry_of_cancelled_pending_generation_runs_it(owner):
    generation = generation_cancel(generation=_create(owner))

    assert generation_retry(generation=generation) == 4

    generation.refresh_from_db()
    assert generation.started_at is not None
    generation = _run(generation)
    assert generation.status == GenerationStatus.COMPLETED
    assert generation.completed_items == 4
    assert generation.metadata.prompts


def test_retried_generation_ends_with_every_variant_completed(owner):
    """A scene that finished after the cancel leaves its variant cancelled ("a cancel
    wins"); once the retry completes every item, no variant may still say cancelled."""
    generation = _create(owner, variants=["soft", "bold"], scenes_per_variant=1)
    pipeline.generation_prepare(generation_id=generation.id)
    scene = scene_claim(scene_id=_scene(generation, "soft", 1).id, claim_token="w1")
    generation_cancel(generation=generation)
    scene_complete(scene=scene, claim_token="w1", result=_fake_result(scene))
    generation.refresh_from_db()
    assert (generation.completed_items, generation.cancelled_items) == (1, 1)

    generation_retry(generation=generation)
    generation = _run(generation)

    assert generation.status == GenerationStatus.COMPLETED
    assert dict(Variant.objects.filter(generation=generation).values_list("label", "status")) == {
        "soft": GenerationStatus.COMPLETED,
        "bold": GenerationStatus.COMPLETED,
    }


def test_generation_time_accumulates_across_runs(owner):
    generation = _run(_create(owner, fail_scenes=["soft:1"]))
    first_run = generation.generation_time_seconds
    assert first_run > 0

    generation_retry(generation=generation)
    generation = _run(generation)

    second_run = (generation.completed_at - generation.started_at).total_seconds()
    assert second_run > 0
    assert generation.generation_time_seconds == pytest.approx(first_run + second_run)


def test_retry_refused_for_completed(owner):
    generation = _run(_create(owner, variants=["soft"], scenes_per_variant=1))
    assert generation.status == GenerationStatus.COMPLETED

    with pytest.raises(ActionRefused, match="completed generation has nothing to retry"):
        generation_retry(generation=generation)


def test_retry_refused_for_pending(owner):
    generation = _create(owner)

    with pytest.raises(ActionRefused, match="pending generation"):
        generation_retry(generation=generation)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PENDING


def test_retry_refused_for_processing(owner):
    generation = _create(owner)
    pipeline.generation_prepare(generation_id=generation.id)
    generation.refresh_from_db()

    with pytest.raises(ActionRefused, match="processing generation"):
        generation_retry(generation=generation)


def test_retry_refused_in_the_trash(owner):
    generation = _run(_create(owner, fail_scenes=["soft:1"]))
    generation = generation_delete(generation=generation)

    with pytest.raises(ActionRefused, match="trash"):
        generation_retry(generation=generation)

    assert _scene(generation, "soft", 1).status == SceneStatus.FAILED


def test_retry_refused_while_a_scene_is_still_stopping(owner):
    generation = _create(owner)
    pipeline.generation_prepare(generation_id=generation.id)
    running = scene_claim(scene_id=_scene(generation, "soft", 1).id, claim_token="w1")
    generation = generation_cancel(generation=generation)

    with pytest.raises(ActionRefused, match="still stopping"):
        generation_retry(generation=generation)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert generation.cancelled_items == 3
    assert Scene.objects.filter(generation=generation, status=SceneStatus.CANCELLED).count() == 3

    scene_stop_cancelled(scene=running, claim_token="w1")
    generation.refresh_from_db()
    assert generation_retry(generation=generation) == 4


def test_retry_refused_when_every_item_completed(owner):
    generation = _create(owner, variants=["soft"], scenes_per_variant=1)
    pipeline.generation_prepare(generation_id=generation.id)
    scene = scene_claim(scene_id=_scene(generation, "soft", 1).id, claim_token="w1")
    generation_cancel(generation=generation)
    scene_complete(scene=scene, claim_token="w1", result=_fake_result(scene))
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED

    with pytest.raises(ActionRefused, match="nothing to retry"):
        generation_retry(generation=generation)

    assert Generation.objects.get(id=generation.id).status == GenerationStatus.CANCELLED
