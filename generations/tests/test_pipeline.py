"""Tests for `generations.pipeline`, driven in-process: preparing a generation, rendering
items into storage, transient failures, cancellation at a checkpoint, and recovery."""

import hashlib
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from generations import dispatch, pipeline, progress, source_fetch, stages
from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.progress import item_claim, item_complete, item_stop_cancelled
from generations.providers.local import LocalProvider
from generations.providers.local_render import render_video
from generations.services import generation_cancel, generation_create
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import (
    SMALL_VIDEO,
    create_uploaded_video,
    create_video,
    item_of,
    item_result,
    prepare,
)
from storage.services import (
    StorageUnavailable,
    object_exists,
    object_keys,
    object_open,
    object_size,
)

pytestmark = pytest.mark.django_db

VARIANTS = ["soft", "ultra"]
"""Two of the known variants: the stage tests read what is planned for "ultra"."""
REFUSED_URL = "http://10.0.0.1/ad.mp4"


@pytest.fixture
def stage_calls(monkeypatch):
    calls = []
    original = stages.analysis_of

    def analysis_of(generation, workdir):
        calls.append(generation.id)
        return original(generation, workdir)

    monkeypatch.setattr(stages, "analysis_of", analysis_of)
    return calls


def _video(owner, **overrides):
    return create_video(owner, **{"variants": VARIANTS, **overrides})


def _stored_bytes(key):
    with object_open(key) as stored:
        return stored.read()


# Prepare ---------------------------------------------------------------------------------


def test_prepare_saves_the_stages_and_sets_item_prompts(owner):
    generation = _video(owner)

    item_ids = pipeline.generation_prepare(generation_id=generation.id)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert generation.started_at is not None
    assert sorted(item_ids) == sorted(
        Item.objects.filter(generation=generation).values_list("id", flat=True)
    )
    metadata = GenerationMetadata.objects.get(generation=generation)
    assert metadata.analysis["text"]["characters"] == len(SMALL_VIDEO["prompt"])
    assert metadata.analysis["text"]["sentences"] == 1
    assert "kitchen" in metadata.analysis["text"]["key_terms"]
    assert "source" not in metadata.analysis
    assert metadata.transformation["variants"]["soft"] == {
        "intensity": 0.25,
        "tone": "gentle",
        "pacing": "relaxed",
    }
    assert metadata.transformation["variants"]["ultra"]["tone"] == "bold"
    assert set(metadata.prompts) == {"soft", "ultra"}
    assert metadata.prompts["soft"][0] == (
        "Hook: A bright kitchen, a family cooking pasta together. Gentle tone, relaxed pacing."
    )
    assert metadata.prompts["ultra"][1].startswith("Problem: A bright kitchen")
    for item in Item.objects.filter(generation=generation).select_related("variant"):
        assert item.prompt == metadata.prompts[item.variant.label][item.number - 1]
        assert item.status == ItemStatus.QUEUED
    assert metadata.evaluation == {}


def test_prepare_runs_the_stages_once(owner, stage_calls):
    generation = _video(owner)
    first = pipeline.generation_prepare(generation_id=generation.id)
    prompts = GenerationMetadata.objects.get(generation=generation).prompts
    started_at = Generation.objects.get(id=generation.id).started_at

    second = pipeline.generation_prepare(generation_id=generation.id)

    assert stage_calls == [generation.id]
    assert sorted(second) == sorted(first)
    assert GenerationMetadata.objects.get(generation=generation).prompts == prompts
    assert Generation.objects.get(id=generation.id).started_at == started_at


def test_prepare_returns_only_items_still_queued(owner):
    generation = prepare(_video(owner))
    done = item_of(generation, "soft", 1)
    pipeline.item_render(item_id=done.id, claim_token="w1")

    item_ids = pipeline.generation_prepare(generation_id=generation.id)

    assert len(item_ids) == 3
    assert done.id not in item_ids


def test_prepare_of_a_cancelled_generation_does_nothing(owner, stage_calls):
    generation = generation_cancel(generation=_video(owner))

    assert pipeline.generation_prepare(generation_id=generation.id) == []
    assert stage_calls == []


def test_transient_stage_error_is_raised_for_a_retry(owner, monkeypatch):
    generation = _video(owner)

    def unavailable(generation, workdir):
        raise GenerationError(ErrorCode.STORAGE_UNAVAILABLE, "S3 is down.")

    monkeypatch.setattr(stages, "analysis_of", unavailable)

    with pytest.raises(GenerationError):
        pipeline.generation_prepare(generation_id=generation.id)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert generation.failed_items == 0
    assert GenerationMetadata.objects.get(generation=generation).prompts == {}


def test_refused_source_url_fails_every_item(owner, monkeypatch):
    connections = []

    def no_connection(address, port, deadline):
        connections.append((address, port))
        raise AssertionError("a refused source must not be connected to")

    monkeypatch.setattr(source_fetch, "_open_socket", no_connection)
    generation = _video(owner, prompt="", source_url=REFUSED_URL)

    assert pipeline.generation_prepare(generation_id=generation.id) == []

    assert connections == []
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED
    assert generation.failed_items == generation.total_items == 4
    assert generation.error_code == ErrorCode.INVALID_INPUT
    assert generation.completed_at is not None
    items = Item.objects.filter(generation=generation)
    assert set(items.values_list("status", "error_code")) == {
        (ItemStatus.FAILED, ErrorCode.INVALID_INPUT)
    }
    assert all(item.attempts == 0 for item in items)
    for variant in Variant.objects.filter(generation=generation):
        assert variant.status == GenerationStatus.FAILED
        assert variant.failed_items == 2
    metadata = GenerationMetadata.objects.get(generation=generation)
    assert metadata.prompts == {}
    assert metadata.evaluation["failure_codes"] == {ErrorCode.INVALID_INPUT: 4}
    assert list(object_keys(f"generations/{generation.id}/")) == []


def test_uploaded_source_is_analysed(owner, tmp_path):
    source = tmp_path / "source.mp4"
    render_video(
        source, prompt="A source", label="src", seed=3, duration_seconds=1, width=160, height=90
    )
    generation = create_uploaded_video(owner, source.read_bytes(), variants=VARIANTS)

    prepare(generation)

    metadata = GenerationMetadata.objects.get(generation=generation)
    analysed = metadata.analysis["source"]
    assert analysed["type"] == "upload"
    assert (analysed["width"], analysed["height"]) == (160, 90)
    assert analysed["duration_seconds"] == pytest.approx(1.0, abs=0.1)
    assert analysed["checksum"] == hashlib.sha256(source.read_bytes()).hexdigest()
    prefix = f"generations/{generation.id}/source/"
    assert analysed["keyframes"] == [f"{prefix}keyframe_{n}.jpg" for n in (1, 2, 3)]
    assert all(object_exists(key) for key in analysed["keyframes"])
    assert "the product in the source video (1 s, 160x90)" in metadata.prompts["soft"][0]


def test_unreadable_uploaded_source_fails_every_item(owner):
    generation = create_uploaded_video(owner, b"this is not a video", variants=VARIANTS)

    prepare(generation)

    assert generation.status == GenerationStatus.FAILED
    assert generation.error_code == ErrorCode.INVALID_INPUT
    assert generation.failed_items == 4


# Render ----------------------------------------------------------------------------------


def test_video_item_is_stored_at_its_keys_with_probed_facts(owner):
    generation = prepare(_video(owner))
    item = item_of(generation, "soft", 2)

    pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    prefix = f"generations/{generation.id}/soft/"
    assert item.status == ItemStatus.COMPLETED
    assert item.asset_key == f"{prefix}scene_2.mp4"
    assert item.thumbnail_key == f"{prefix}scene_2_thumb.jpg"
    assert item.content_type == "video/mp4"
    assert (item.width, item.height) == (160, 90)
    assert item.duration_seconds == pytest.approx(1.0, abs=0.1)
    asset = _stored_bytes(item.asset_key)
    assert item.file_size == len(asset) == object_size(item.asset_key)
    assert item.checksum == hashlib.sha256(asset).hexdigest()
    assert _stored_bytes(item.thumbnail_key)[:3] == b"\xff\xd8\xff"
    # Charged by the second of video actually produced.
    seconds = Decimal(str(item.duration_seconds)).quantize(Decimal("0.001"))
    assert item.cost == (seconds * Decimal("0.0100")).quantize(Decimal("0.0001"))
    assert item.cost > 0
    assert item.provider_job_id.startswith("local-")
    assert item.provider_status == "succeeded"
    assert item.attempts == 1
    assert set(object_keys(f"generations/{generation.id}/")) == {
        item.asset_key,
        item.thumbnail_key,
    }
    generation.refresh_from_db()
    assert generation.completed_items == 1
    assert generation.actual_cost == item.cost


def test_speech_track_is_stored_with_its_waveform(owner):
    generation = prepare(
        generation_create(
            owner=owner,
            kind="speech",
            input={"text": "Spring is here. Everything in the kitchen is half price."},
        )
    )
    track = item_of(generation, "narrator", 1)

    pipeline.item_render(item_id=track.id, claim_token="w1")

    track.refresh_from_db()
    prefix = f"generations/{generation.id}/narrator/"
    assert track.status == ItemStatus.COMPLETED
    assert track.asset_key == f"{prefix}track_1.wav"
    assert track.thumbnail_key == f"{prefix}track_1_wave.png"
    assert track.content_type.startswith("audio/")
    assert track.duration_seconds > 0
    assert track.width is None
    asset = _stored_bytes(track.asset_key)
    assert asset[:4] == b"RIFF"
    assert track.file_size == len(asset)
    assert track.checksum == hashlib.sha256(asset).hexdigest()
    assert _stored_bytes(track.thumbnail_key)[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_is_stored_with_its_thumbnail(owner):
    generation = prepare(
        generation_create(
            owner=owner, kind="image", input={"prompt": "A red bicycle", "width": 64, "height": 64}
        )
    )
    image = item_of(generation, "default", 1)

    pipeline.item_render(item_id=image.id, claim_token="w1")

    image.refresh_from_db()
    prefix = f"generations/{generation.id}/default/"
    assert image.status == ItemStatus.COMPLETED
    assert image.asset_key == f"{prefix}scene_1.png"
    assert image.thumbnail_key == f"{prefix}scene_1_thumb.jpg"
    assert image.content_type == "image/png"
    assert (image.width, image.height) == (64, 64)
    assert image.duration_seconds is None
    asset = _stored_bytes(image.asset_key)
    assert asset[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.checksum == hashlib.sha256(asset).hexdigest()
    assert _stored_bytes(image.thumbnail_key)[:3] == b"\xff\xd8\xff"
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.COMPLETED


def test_item_held_by_another_delivery_is_not_rendered(owner, produced):
    generation = prepare(_video(owner))
    item = item_of(generation, "soft", 1)
    item_claim(item_id=item.id, claim_token="w1")

    pipeline.item_render(item_id=item.id, claim_token="w2")

    assert produced == []
    item.refresh_from_db()
    assert item.claim_token == "w1"


def test_transient_failure_is_requeued_and_dispatched_with_a_countdown(
    owner, settings, sent, django_capture_on_commit_callbacks
):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    generation = prepare(_video(owner, transient_fail_items=["soft:1"]))
    item = item_of(generation, "soft", 1)

    with django_capture_on_commit_callbacks(execute=True):
        pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.QUEUED
    assert item.attempts == 1
    assert item.error_code == ErrorCode.PROVIDER_TIMEOUT
    assert len(sent) == 1
    name, item_id, countdown = sent[0]
    assert (name, item_id) == (dispatch.RENDER_ITEM, item.id)
    assert 1.6 <= countdown <= 2.4
    assert list(object_keys(f"generations/{generation.id}/")) == []
    generation.refresh_from_db()
    assert generation.failed_items == 0

    pipeline.item_render(item_id=item.id, claim_token="w2")

    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED
    assert item.attempts == 2
    assert item.error_code == ""
    assert object_exists(item.asset_key)


def test_permanent_failure_is_recorded_and_not_dispatched(
    owner, sent, django_capture_on_commit_callbacks
):
    generation = prepare(_video(owner, fail_items=["ultra:2"]))
    item = item_of(generation, "ultra", 2)

    with django_capture_on_commit_callbacks(execute=True):
        pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error_code == ErrorCode.PROVIDER_REJECTED
    assert "ultra:2" in item.error_message
    assert sent == []
    generation.refresh_from_db()
    assert generation.failed_items == 1


def test_storage_outage_is_treated_as_transient(owner, monkeypatch):
    generation = prepare(_video(owner))
    item = item_of(generation, "soft", 1)

    def unavailable(*, key, content):
        raise StorageUnavailable(f"Could not write {key}")

    monkeypatch.setattr(pipeline, "object_save", unavailable)

    pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.QUEUED
    assert item.error_code == ErrorCode.STORAGE_UNAVAILABLE
    assert item.asset_key == ""


def test_unexpected_error_fails_the_item_as_internal(owner, monkeypatch):
    generation = prepare(_video(owner))
    item = item_of(generation, "soft", 1)

    def broken(self, request):
        raise RuntimeError("bug in a provider")

    monkeypatch.setattr(LocalProvider, "produce", broken)

    pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error_code == ErrorCode.INTERNAL
    assert "RuntimeError" in item.error_message


def test_soft_time_limit_is_treated_as_a_timeout(owner, monkeypatch):
    generation = prepare(_video(owner))
    item = item_of(generation, "soft", 1)

    def too_slow(self, request):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(LocalProvider, "produce", too_slow)

    pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.QUEUED
    assert item.error_code == ErrorCode.PROVIDER_TIMEOUT


# Cancellation ------------------------------------------------------------------------------


def test_render_stops_at_a_checkpoint_once_cancelled(owner):
    generation = prepare(_video(owner, variants=["soft"], scenes_per_variant=1))
    item = item_of(generation, "soft", 1)
    # Cancelled after the item's message was sent but before it was claimed.
    Generation.objects.filter(id=generation.id).update(status=GenerationStatus.CANCELLED)

    pipeline.item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.CANCELLED
    assert item.error_code == ErrorCode.CANCELLED
    assert item.asset_key == ""
    assert list(object_keys(f"generations/{generation.id}/")) == []
    generation.refresh_from_db()
    assert generation.cancelled_items == 1
    assert Variant.objects.get(generation=generation).status == GenerationStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_cancel_from_another_thread_stops_a_running_render(owner):
    generation = prepare(_video(owner, variants=["soft"], delay_ms=10_000))
    item = item_of(generation, "soft", 1)
    finished = []

    def render():
        try:
            started = time.monotonic()
            pipeline.item_render(item_id=item.id, claim_token="w1")
            finished.append(time.monotonic() - started)
        finally:
            connection.close()

    worker = threading.Thread(target=render)
    worker.start()
    deadline = time.monotonic() + 10
    while not Item.objects.filter(id=item.id, status=ItemStatus.PROCESSING).exists():
        assert time.monotonic() < deadline, "the render never started"
        time.sleep(0.02)

    generation_cancel(generation=Generation.objects.get(id=generation.id))
    worker.join(timeout=10)

    assert not worker.is_alive()
    assert finished
    assert finished[0] < 5
    item.refresh_from_db()
    assert item.status == ItemStatus.CANCELLED
    assert item.error_message == "Stopped because the generation was cancelled."
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert generation.cancelled_items == generation.total_items == 2
    assert Variant.objects.get(generation=generation).status == GenerationStatus.CANCELLED
    assert list(object_keys(f"generations/{generation.id}/")) == []


# Recovery ----------------------------------------------------------------------------------


def _age_item(item, **fields):
    Item.objects.filter(id=item.id).update(**fields)


def test_recover_requeues_stale_processing_items(
    owner, settings, sent, django_capture_on_commit_callbacks
):
    settings.ITEM_MAX_ATTEMPTS = 3
    generation = prepare(_video(owner))
    stale = item_of(generation, "soft", 1)
    fresh = item_of(generation, "soft", 2)
    item_claim(item_id=stale.id, claim_token="lost")
    item_claim(item_id=fresh.id, claim_token="alive")
    long_ago = timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS + 60)
    _age_item(stale, started_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["requeued_items"] == 1
    assert counts["lost_items"] == 0
    stale.refresh_from_db()
    assert stale.status == ItemStatus.QUEUED
    assert stale.claim_token == ""
    fresh.refresh_from_db()
    assert fresh.status == ItemStatus.PROCESSING
    assert fresh.claim_token == "alive"
    assert (dispatch.RENDER_ITEM, stale.id, None) in sent
    assert not any(item_id == fresh.id for _, item_id, _ in sent)


def test_recover_fails_a_item_whose_attempts_ran_out(
    owner, settings, sent, django_capture_on_commit_callbacks
):
    settings.ITEM_MAX_ATTEMPTS = 1
    generation = prepare(_video(owner))
    stale = item_of(generation, "soft", 1)
    item_claim(item_id=stale.id, claim_token="lost")
    _age_item(
        stale, started_at=timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS + 60)
    )

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["requeued_items"] == 0
    assert counts["lost_items"] == 1
    stale.refresh_from_db()
    assert stale.status == ItemStatus.FAILED
    assert stale.error_code == ErrorCode.WORKER_LOST
    generation.refresh_from_db()
    assert generation.failed_items == 1
    assert not any(item_id == stale.id for _, item_id, _ in sent)


def test_recover_redispatches_old_pending_generations(
    owner, settings, sent, django_capture_on_commit_callbacks
):
    old = _video(owner)
    recent = _video(owner)
    Generation.objects.filter(id=old.id).update(
        created_at=timezone.now() - timedelta(seconds=settings.PENDING_REDISPATCH_SECONDS + 5)
    )

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["redispatched_generations"] == 1
    assert counts["redispatched_items"] == 0
    assert sent == [(dispatch.RUN_GENERATION, old.id, None)]
    assert recent.id not in {object_id for _, object_id, _ in sent}


def test_recover_redispatches_forgotten_queued_items(
    owner, settings, sent, django_capture_on_commit_callbacks
):
    generation = prepare(_video(owner))
    forgotten = [item_of(generation, "soft", 1), item_of(generation, "ultra", 2)]
    for item in forgotten:
        _age_item(
            item, queued_at=timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS + 60)
        )

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["redispatched_items"] == 2
    assert counts["redispatched_generations"] == 0
    assert sorted(sent, key=str) == sorted(
        [(dispatch.RENDER_ITEM, item.id, None) for item in forgotten], key=str
    )


def test_recover_redispatches_a_generation_whose_stages_never_finished(
    owner, settings, sent, monkeypatch, django_capture_on_commit_callbacks
):
    generation = _video(owner)

    def unavailable(generation, workdir):
        raise GenerationError(ErrorCode.STORAGE_UNAVAILABLE, "S3 is down.")

    monkeypatch.setattr(stages, "analysis_of", unavailable)
    with pytest.raises(GenerationError):
        pipeline.generation_prepare(generation_id=generation.id)
    # Its retry message was lost long ago: neither the generation nor its items moved.
    long_ago = timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS + 60)
    Generation.objects.filter(id=generation.id).update(updated_at=long_ago)
    Item.objects.filter(generation=generation).update(queued_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["redispatched_generations"] == 1
    assert (dispatch.RUN_GENERATION, generation.id, None) in sent
    # Its items have no prompts yet: they are queued by the prepare, not rendered now.
    assert counts["redispatched_items"] == 0
    assert [name for name, _, _ in sent] == [dispatch.RUN_GENERATION]


def test_recover_decides_a_generation_whose_last_worker_died_before_deciding(
    owner, monkeypatch, django_capture_on_commit_callbacks
):
    generation = prepare(_video(owner))
    items = [item_claim(item_id=item.id, claim_token="w1") for item in generation.items.all()]
    for item in items[:-1]:
        item_complete(item=item, claim_token="w1", result=item_result(item))
    with monkeypatch.context() as dying:
        # The last item's worker dies between counting it and deciding the final status.
        dying.setattr(progress, "finalise_if_ended", lambda **kwargs: None)
        item_complete(item=items[-1], claim_token="w1", result=item_result(items[-1]))
    Generation.objects.filter(id=generation.id).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert generation.completed_items == generation.total_items

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["finalised_generations"] == 1
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.COMPLETED
    assert generation.metadata.evaluation["success_rate"] == 1.0
    assert set(generation.variants.values_list("status", flat=True)) == {"completed"}
    assert pipeline.recover_stuck_work()["finalised_generations"] == 0


def test_recover_ends_the_variants_of_a_cancelled_generation_left_running(
    owner, monkeypatch, django_capture_on_commit_callbacks
):
    generation = prepare(_video(owner, variants=["soft"], scenes_per_variant=1))
    running = item_claim(item_id=item_of(generation, "soft", 1).id, claim_token="w1")
    generation_cancel(generation=generation)

    with monkeypatch.context() as dying:
        dying.setattr(progress, "finalise_if_ended", lambda **kwargs: None)
        item_stop_cancelled(item=running, claim_token="w1")
    Generation.objects.filter(id=generation.id).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    assert Variant.objects.get(generation=generation).status == GenerationStatus.PROCESSING

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts["finalised_generations"] == 1
    assert Variant.objects.get(generation=generation).status == GenerationStatus.CANCELLED
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED


def test_recover_with_nothing_stuck_dispatches_nothing(
    owner, sent, django_capture_on_commit_callbacks
):
    prepare(_video(owner))
    _video(owner)

    with django_capture_on_commit_callbacks(execute=True):
        counts = pipeline.recover_stuck_work()

    assert counts == {
        "requeued_items": 0,
        "lost_items": 0,
        "redispatched_generations": 0,
        "redispatched_items": 0,
        "finalised_generations": 0,
    }
    assert sent == []
