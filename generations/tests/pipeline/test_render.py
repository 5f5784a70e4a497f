"""Tests for `generations.pipeline.render`, driven in-process: items stored at their keys
with their probed facts, transient and permanent failures, and the cancel checkpoint."""

import hashlib
import threading
import time
from decimal import Decimal

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection

from generations import dispatch
from generations.errors import ErrorCode
from generations.models import Generation, Item, Variant
from generations.pipeline import render
from generations.pipeline.lifecycle import item_claim
from generations.pipeline.render import item_render
from generations.providers.local import LocalProvider
from generations.services import generation_cancel, generation_create
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import create_video, item_of, prepare
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


def _video(owner, **overrides):
    return create_video(owner, **{"variants": VARIANTS, **overrides})


def _stored_bytes(key):
    with object_open(key) as stored:
        return stored.read()


# Render ----------------------------------------------------------------------------------


def test_video_item_is_stored_at_its_keys_with_probed_facts(owner):
    generation = prepare(_video(owner))
    item = item_of(generation, "soft", 2)

    item_render(item_id=item.id, claim_token="w1")

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

    item_render(item_id=track.id, claim_token="w1")

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

    item_render(item_id=image.id, claim_token="w1")

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

    item_render(item_id=item.id, claim_token="w2")

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
        item_render(item_id=item.id, claim_token="w1")

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

    item_render(item_id=item.id, claim_token="w2")

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
        item_render(item_id=item.id, claim_token="w1")

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

    monkeypatch.setattr(render, "object_save", unavailable)

    item_render(item_id=item.id, claim_token="w1")

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

    item_render(item_id=item.id, claim_token="w1")

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

    item_render(item_id=item.id, claim_token="w1")

    item.refresh_from_db()
    assert item.status == ItemStatus.QUEUED
    assert item.error_code == ErrorCode.PROVIDER_TIMEOUT


# Cancellation ------------------------------------------------------------------------------


def test_render_stops_at_a_checkpoint_once_cancelled(owner):
    generation = prepare(_video(owner, variants=["soft"], scenes_per_variant=1))
    item = item_of(generation, "soft", 1)
    # Cancelled after the item's message was sent but before it was claimed.
    Generation.objects.filter(id=generation.id).update(status=GenerationStatus.CANCELLED)

    item_render(item_id=item.id, claim_token="w1")

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
            item_render(item_id=item.id, claim_token="w1")
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
