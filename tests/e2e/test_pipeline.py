"""The pipeline end to end: real worker processes, the test database, the broker and the
S3 server (or their embedded stand-ins in the fallback tier)."""

import functools
import http.server
import tempfile
import threading
import time
from pathlib import Path

import av
import pytest
from PIL import Image

from generations import services
from generations.models import Item
from generations.providers.local.video import render_video
from generations.states import GenerationStatus, ItemStatus
from generations.tests.factories import UserFactory
from generations.tests.pipeline_helpers import make_images
from storage.services import object_keys, object_open
from tests.workers import wait_for, wait_until_ended

pytestmark = pytest.mark.django_db(transaction=True)

SMALL_VIDEO = {"scene_seconds": 1, "width": 320, "height": 180, "fps": 12}


def _download(key: str, directory: Path) -> Path:
    target = directory / Path(key).name
    with object_open(key) as stored:
        target.write_bytes(stored.read())
    return target


def test_video_ad_with_four_variants_of_four_items_completes(start_worker):
    start_worker()
    owner = UserFactory()

    generation = services.generation_create(
        owner=owner,
        kind="video_ad",
        input={"prompt": "Cold brew coffee on a summer morning", "scene_seconds": 2, "seed": 11},
    )
    assert generation.status == GenerationStatus.PENDING
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.total_items, generation.completed_items, generation.failed_items) == (
        16,
        16,
        0,
    )
    assert generation.generation_time_seconds > 0
    assert generation.actual_cost > 0
    metadata = generation.metadata
    assert metadata.analysis["text"]["words"] == 6
    assert set(metadata.transformation["variants"]) == {"soft", "medium", "aggressive", "ultra"}
    assert len(metadata.prompts["ultra"]) == 4
    assert metadata.evaluation["success_rate"] == 1.0
    assert metadata.evaluation["durations_on_target"] is True

    keys = set(object_keys(f"generations/{generation.id}/"))
    items = list(generation.items.select_related("variant"))
    assert len(items) == 16
    with tempfile.TemporaryDirectory() as tmp:
        for item in items:
            prefix = f"generations/{generation.id}/{item.variant.label}/scene_{item.number}"
            assert item.asset_key == f"{prefix}.mp4"
            assert item.thumbnail_key == f"{prefix}_thumb.jpg"
            assert (item.width, item.height) == (640, 360)
            assert item.duration_seconds == pytest.approx(2, abs=0.1)
            assert item.content_type == "video/mp4"
            video = _download(item.asset_key, Path(tmp))
            with av.open(str(video)) as container:
                assert container.streams.video[0].codec_context.name == "h264"
                assert sum(1 for _ in container.decode(video=0)) == 48
            with Image.open(_download(item.thumbnail_key, Path(tmp))) as thumb:
                assert thumb.format == "JPEG"
                assert thumb.width == 320
    assert keys == {s.asset_key for s in items} | {s.thumbnail_key for s in items}


def test_injected_failures_end_partial_and_retry_completes_without_rerendering(start_worker):
    start_worker()
    generation = services.generation_create(
        owner=UserFactory(),
        kind="video_ad",
        input={
            "prompt": "A bicycle commuter in the rain",
            "variants": ["soft", "ultra"],
            "scenes_per_variant": 3,
            "fail_items": ["ultra:2", "soft:3"],
            **SMALL_VIDEO,
        },
    )
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.PARTIAL_SUCCESS
    assert (generation.completed_items, generation.failed_items) == (4, 2)
    assert generation.error_code == "provider_rejected"
    kept = {
        item.id: (item.completed_at, item.checksum, item.attempts)
        for item in generation.items.filter(status=ItemStatus.COMPLETED)
    }

    assert services.generation_retry(generation=generation) == 2
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.completed_items, generation.failed_items) == (6, 0)
    for item in generation.items.filter(id__in=kept):
        assert (item.completed_at, item.checksum, item.attempts) == kept[item.id]
    assert set(generation.items.exclude(id__in=kept).values_list("attempts", flat=True)) == {2}


def test_transient_failure_is_retried_automatically(start_worker):
    start_worker()
    generation = services.generation_create(
        owner=UserFactory(),
        kind="image",
        input={"prompt": "A red kite", "width": 64, "height": 64, "transient_fail_items": [1]},
    )
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.COMPLETED
    assert generation.items.get().attempts == 2


def test_cancel_during_a_run_stops_every_item(start_worker):
    start_worker()
    generation = services.generation_create(
        owner=UserFactory(),
        kind="video_ad",
        input={"prompt": "Slow items", "delay_ms": 3000, **SMALL_VIDEO},
    )
    wait_for(
        lambda: generation.items.filter(status=ItemStatus.PROCESSING).exists(),
        timeout=60,
        message="an item to start",
    )

    services.generation_cancel(generation=generation)

    wait_for(
        lambda: not generation.items.filter(status=ItemStatus.PROCESSING).exists(),
        timeout=10,
        message="running items to stop at their checkpoint",
    )
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    truth = {
        status: generation.items.filter(status=status).count()
        for status in (ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED)
    }
    assert generation.completed_items == truth[ItemStatus.COMPLETED]
    assert generation.failed_items == truth[ItemStatus.FAILED]
    assert generation.cancelled_items == truth[ItemStatus.CANCELLED] >= 14
    assert sum(truth.values()) == generation.total_items == 16
    assert set(generation.variants.values_list("status", flat=True)) == {"cancelled"}


def test_worker_killed_mid_item_still_completes_without_duplicates(start_worker):
    """With the shipped timing (heartbeats, lease and recovery interval left at their
    defaults), the generation is final well within 90 s of the kill."""
    first = start_worker("doomed", concurrency=2)
    generation = services.generation_create(
        owner=UserFactory(),
        kind="video_ad",
        input={
            "prompt": "Interrupted",
            "variants": ["soft", "ultra"],
            "scenes_per_variant": 2,
            "delay_ms": 1500,
            **SMALL_VIDEO,
        },
    )
    wait_for(
        lambda: generation.items.filter(status=ItemStatus.PROCESSING).exists(),
        timeout=60,
        message="an item to start",
    )

    first.kill()
    killed_at = time.monotonic()
    start_worker("rescuer", beat=True)
    wait_until_ended(generation, timeout=90)
    assert time.monotonic() - killed_at < 90

    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.completed_items, generation.failed_items) == (4, 0)
    assert generation.items.filter(status=ItemStatus.COMPLETED).count() == 4
    keys = sorted(object_keys(f"generations/{generation.id}/"))
    assert len(keys) == 8
    assert keys == sorted(
        [s.asset_key for s in generation.items.all()]
        + [s.thumbnail_key for s in generation.items.all()]
    )
    assert max(generation.items.values_list("attempts", flat=True)) >= 2


def test_eight_worker_processes_keep_every_counter_exact(start_worker):
    for name in ("a", "b", "c", "d"):
        start_worker(name, concurrency=2)
    owner = UserFactory()
    labels = [f"v{n}" for n in range(8)]
    generations = [
        make_images(
            owner,
            run=False,
            prompt=f"Pattern {n}",
            variants=labels,
            images_per_variant=8,
            fail_rate=0.1,
        )
        for n in range(8)
    ]
    for generation in generations:
        wait_until_ended(generation, timeout=300)

    assert sum(g.total_items for g in generations) == 512
    for generation in generations:
        items = Item.objects.filter(generation=generation)
        assert generation.completed_items == items.filter(status=ItemStatus.COMPLETED).count()
        assert generation.failed_items == items.filter(status=ItemStatus.FAILED).count()
        assert generation.completed_items + generation.failed_items == 64
        for variant in generation.variants.all():
            assert variant.completed_items == variant.items.filter(status="completed").count()
            assert variant.failed_items == variant.items.filter(status="failed").count()
        expected = "completed" if not generation.failed_items else "partial_success"
        assert generation.status == expected


def test_speech_generation_makes_one_track_per_sentence(start_worker):
    start_worker()
    generation = services.generation_create(
        owner=UserFactory(),
        kind="speech",
        input={"text": "Welcome to the spring sale. Everything in store is twenty percent off."},
    )
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.COMPLETED
    tracks = list(generation.items.order_by("number"))
    assert [track.asset_key.rsplit("/", 1)[1] for track in tracks] == ["track_1.wav", "track_2.wav"]
    assert [t.thumbnail_key.rsplit("/", 1)[1] for t in tracks] == [
        "track_1_wave.png",
        "track_2_wave.png",
    ]
    assert all(track.duration_seconds > 0.5 for track in tracks)


@pytest.fixture
def served_video(tmp_path):
    """A 2-second 320x180 MP4 served over HTTP on loopback."""
    render_video(
        tmp_path / "source.mp4",
        prompt="source",
        label="src",
        seed=1,
        duration_seconds=2,
        width=320,
        height=180,
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/source.mp4"
    server.shutdown()
    server.server_close()


def test_video_ad_from_a_source_url_analyses_the_real_video(start_worker, served_video):
    start_worker()
    generation = services.generation_create(
        owner=UserFactory(),
        kind="video_ad",
        input={
            "source_url": served_video,
            "variants": ["soft"],
            "scenes_per_variant": 1,
            **SMALL_VIDEO,
        },
    )
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.COMPLETED
    source = generation.metadata.analysis["source"]
    assert source["duration_seconds"] == pytest.approx(2, abs=0.1)
    assert (source["width"], source["height"]) == (320, 180)
    assert source["frame_rate"] == pytest.approx(24)
    assert len(source["keyframes"]) == 3
    stored = set(object_keys(f"generations/{generation.id}/source/"))
    assert stored == {*source["keyframes"], source["stored_key"]}
    assert "320x180" in generation.items.get().prompt


def test_source_url_on_a_private_address_fails_as_invalid_input(start_worker):
    start_worker()
    generation = services.generation_create(
        owner=UserFactory(),
        kind="video_ad",
        input={"source_url": "http://10.0.0.1/ad.mp4", "variants": ["soft"], **SMALL_VIDEO},
    )
    wait_until_ended(generation)

    assert generation.status == GenerationStatus.FAILED
    assert generation.error_code == "invalid_input"
    assert generation.failed_items == generation.total_items == 4
    assert (
        "private" in generation.error_message.lower()
        or "not allowed" in generation.error_message.lower()
    )


def test_a_warm_shutdown_lets_the_running_items_finish(start_worker):
    """SIGTERM, as a deployment stops a worker: the items it is running end completed by
    it, once each; the rest are taken up by the next worker."""
    leaving = start_worker("leaving", concurrency=2)
    generation = make_images(
        UserFactory(), run=False, variants=["a", "b"], images_per_variant=2, delay_ms=2000
    )
    wait_for(
        lambda: generation.items.filter(status=ItemStatus.PROCESSING).count() == 2,
        timeout=60,
        message="two items to start",
    )
    running = list(
        generation.items.filter(status=ItemStatus.PROCESSING).values_list("id", flat=True)
    )

    leaving.terminate()

    finished = generation.items.filter(id__in=running)
    assert set(finished.values_list("status", flat=True)) == {ItemStatus.COMPLETED}
    assert set(finished.values_list("attempts", flat=True)) == {1}
    start_worker("staying")
    wait_until_ended(generation, timeout=90)
    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.completed_items, generation.failed_items) == (4, 0)
    assert set(generation.items.values_list("attempts", flat=True)) == {1}
