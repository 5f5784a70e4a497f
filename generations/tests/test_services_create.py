"""Tests for `generation_create`: the rows it records, the snapshot, the estimate, and the
enqueue that waits for the commit."""

import io
from decimal import Decimal

import pytest
from django.db import transaction

from generations import dispatch, services
from generations.errors import InputError, LimitExceeded
from generations.models import Generation, GenerationMetadata, Item, SourceType, Variant
from generations.services import TITLE_LENGTH, generation_create
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import SMALL_VIDEO_DEFAULT_VARIANTS
from storage.services import (
    StorageUnavailable,
    object_exists,
    object_keys,
    object_open,
    object_save,
)

pytestmark = pytest.mark.django_db


def test_rows_are_recorded_pending_before_any_provider_runs(owner, sent, produced):
    generation = generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO_DEFAULT_VARIANTS, "scenes_per_variant": 3},
    )

    generation.refresh_from_db()
    assert produced == []
    assert generation.owner == owner
    assert generation.status == GenerationStatus.PENDING
    assert generation.total_items == 12
    assert (
        generation.completed_items,
        generation.failed_items,
        generation.cancelled_items,
    ) == (0, 0, 0)
    assert generation.pending_items == 12
    assert generation.actual_cost == 0
    assert generation.started_at is None
    assert generation.completed_at is None
    assert generation.parent is None

    variants = list(Variant.objects.filter(generation=generation))
    assert [(v.label, v.position) for v in variants] == [
        ("soft", 0),
        ("medium", 1),
        ("aggressive", 2),
        ("ultra", 3),
    ]
    assert all(v.status == GenerationStatus.PENDING and v.total_items == 3 for v in variants)
    assert all(v.completed_items == v.failed_items == v.cancelled_items == 0 for v in variants)

    items = list(Item.objects.filter(generation=generation))
    assert len(items) == 12
    for variant in variants:
        numbers = sorted(s.number for s in items if s.variant_id == variant.id)
        assert numbers == [1, 2, 3]
    assert all(s.status == ItemStatus.QUEUED for s in items)
    assert all(s.queued_at is not None and s.attempts == 0 for s in items)
    assert all(s.started_at is None and s.asset_key == "" for s in items)

    metadata = GenerationMetadata.objects.get(generation=generation)
    assert metadata.analysis == metadata.prompts == metadata.evaluation == {}


def test_totals_are_variants_times_items(owner, sent):
    video = generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO_DEFAULT_VARIANTS, "variants": ["a", "b"], "scenes_per_variant": 5},
    )
    speech = generation_create(
        owner=owner,
        kind="speech",
        input={
            "text": "Welcome to the spring sale. Everything in the kitchen is half price.",
            "variants": ["anna", "ben", "cleo"],
        },
    )
    image = generation_create(
        owner=owner, kind="image", input={"prompt": "A red bicycle", "images_per_variant": 3}
    )

    assert video.total_items == 10
    assert Item.objects.filter(generation=video).count() == 10
    assert speech.total_items == 6
    assert list(
        Item.objects.filter(generation=speech, variant__label="ben")
        .order_by("number")
        .values_list("prompt", flat=True)
    ) == ["Welcome to the spring sale.", "Everything in the kitchen is half price."]
    assert image.total_items == 3
    assert set(Item.objects.filter(generation=image).values_list("prompt", flat=True)) == {
        "A red bicycle"
    }


def test_snapshot_includes_provider_model_and_seed(owner, sent):
    generation = generation_create(owner=owner, kind="video_ad", input=SMALL_VIDEO_DEFAULT_VARIANTS)

    generation.refresh_from_db()
    snapshot = generation.input
    assert snapshot["provider"] == "local"
    assert snapshot["model"] == "local-render-1"
    assert isinstance(snapshot["seed"], int)
    assert snapshot["scene_seconds"] == 1.0
    assert snapshot["variants"] == ["soft", "medium", "aggressive", "ultra"]
    assert generation.provider == "local"
    assert generation.provider_model == "local-render-1"
    assert generation.prompt == SMALL_VIDEO_DEFAULT_VARIANTS["prompt"]
    assert generation.source_type == SourceType.NONE


def test_given_seed_is_recorded(owner, sent):
    generation = generation_create(owner=owner, kind="image", input={"prompt": "x", "seed": 99})

    generation.refresh_from_db()
    assert generation.input["seed"] == 99


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        # 4 variants x 2 items x 1.5 s x 0.01
        (
            "video_ad",
            {**SMALL_VIDEO_DEFAULT_VARIANTS, "scenes_per_variant": 2, "scene_seconds": 1.5},
            "0.1200",
        ),
        # 2 variants x 3 images x 0.02
        (
            "image",
            {"prompt": "A red bicycle", "variants": ["a", "b"], "images_per_variant": 3},
            "0.1200",
        ),
        # 1 variant x 20 characters / 1000 x 0.015
        ("speech", {"text": "Hello there, friend."}, "0.0003"),
    ],
)
def test_cost_estimate_comes_from_the_price_table(owner, sent, kind, raw, expected):
    generation = generation_create(owner=owner, kind=kind, input=raw)

    generation.refresh_from_db()
    assert generation.cost_estimate == Decimal(expected)


def test_title_defaults_to_the_prompt(owner, sent):
    generation = generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO_DEFAULT_VARIANTS, "prompt": "  Fresh   pasta\n night "},
    )

    assert generation.title == "Fresh pasta night"


def test_long_prompt_title_is_shortened(owner, sent):
    prompt = "word " * 40
    generation = generation_create(owner=owner, kind="image", input={"prompt": prompt})

    assert len(generation.title) == TITLE_LENGTH
    assert generation.title.endswith("…")
    assert generation.title[:-1] == " ".join(prompt.split())[: TITLE_LENGTH - 1].rstrip()


def test_speech_title_comes_from_its_text(owner, sent):
    generation = generation_create(owner=owner, kind="speech", input={"text": "Hello there."})

    assert generation.title == "Hello there."
    assert generation.prompt == "Hello there."


def test_title_without_prompt_names_the_source(owner, sent):
    generation = generation_create(
        owner=owner,
        kind="video_ad",
        input={
            **SMALL_VIDEO_DEFAULT_VARIANTS,
            "prompt": "",
            "source_url": "https://example.com/ad.mp4",
        },
    )

    assert generation.title == "Video ad from source"
    assert generation.source_type == SourceType.URL
    assert generation.source_url == "https://example.com/ad.mp4"


def test_given_title_is_stripped_and_capped(owner, sent):
    assert (
        generation_create(
            owner=owner, kind="image", input={"prompt": "x"}, title="  Spring  "
        ).title
        == "Spring"
    )
    assert (
        len(
            generation_create(
                owner=owner, kind="image", input={"prompt": "x"}, title="t" * 300
            ).title
        )
        == 200
    )


def test_unknown_provider_is_refused(owner, sent):
    with pytest.raises(InputError) as caught:
        generation_create(owner=owner, kind="image", input={"prompt": "x"}, provider="dalle")

    assert list(caught.value.fields) == ["provider"]
    assert "local" in caught.value.fields["provider"][0]
    assert not Generation.objects.exists()


def test_unknown_model_is_refused(owner, sent):
    with pytest.raises(InputError) as caught:
        generation_create(owner=owner, kind="image", input={"prompt": "x"}, model="gpt-image")

    assert list(caught.value.fields) == ["model"]
    assert "local-render-1" in caught.value.fields["model"][0]
    assert not Generation.objects.exists()


def test_invalid_input_records_nothing(owner, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(InputError):
        generation_create(owner=owner, kind="video_ad", input={"prompt": "", "width": 3})

    assert not Generation.objects.exists()
    assert callbacks == []


def test_enqueue_waits_for_the_commit(owner, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        generation = generation_create(owner=owner, kind="image", input={"prompt": "x"})
        assert sent == []

    assert len(callbacks) == 1
    callbacks[0]()
    assert sent == [(dispatch.RUN_GENERATION, generation.id, None)]


@pytest.mark.django_db(transaction=True)
def test_enqueue_happens_after_commit_only(owner, sent):
    with transaction.atomic():
        generation = generation_create(owner=owner, kind="image", input={"prompt": "x"})
        assert sent == []

    assert sent == [(dispatch.RUN_GENERATION, generation.id, None)]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_enqueued_when_the_transaction_rolls_back(owner, sent):
    def create_then_fail():
        with transaction.atomic():
            generation_create(owner=owner, kind="image", input={"prompt": "x"})
            raise RuntimeError("the caller failed after creating")

    with pytest.raises(RuntimeError):
        create_then_fail()

    assert sent == []
    assert not Generation.objects.exists()


def test_upload_source_is_stored_under_the_generation(owner, sent):
    payload = b"\x00\x00\x00\x18ftypmp42 not really a video"

    generation = generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO_DEFAULT_VARIANTS, "prompt": ""},
        source_file=io.BytesIO(payload),
        source_filename="My Ad.MP4",
    )

    generation.refresh_from_db()
    key = f"generations/{generation.id}/source/original.mp4"
    assert generation.source_type == SourceType.UPLOAD
    assert generation.source_url == ""
    assert generation.input["source_key"] == key
    assert generation.title == "Video ad from source"
    assert object_exists(key)
    with object_open(key) as stored:
        assert stored.read() == payload
    assert list(object_keys(f"generations/{generation.id}/")) == [key]


def test_upload_without_a_usable_extension_is_stored_as_bin(owner, sent):
    generation = generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO_DEFAULT_VARIANTS, "prompt": ""},
        source_file=io.BytesIO(b"data"),
        source_filename="clip",
    )

    assert generation.input["source_key"] == f"generations/{generation.id}/source/original.bin"
    assert object_exists(generation.input["source_key"])


def test_upload_and_source_url_together_are_refused(owner, sent):
    with pytest.raises(InputError) as caught:
        generation_create(
            owner=owner,
            kind="video_ad",
            input={"source_url": "https://example.com/ad.mp4"},
            source_file=io.BytesIO(b"data"),
            source_filename="ad.mp4",
        )

    assert list(caught.value.fields) == ["source_url"]
    assert not Generation.objects.exists()


def test_upload_is_stored_before_the_owner_row_is_locked(owner, sent, monkeypatch):
    """An upload may take minutes; the owner's row must not be locked meanwhile."""
    steps = []
    check_limit = services.create._ensure_below_active_limit

    def recording_limit(owner, *, lock):
        steps.append("lock and count" if lock else "count")
        check_limit(owner, lock=lock)

    def recording_save(*, key, content):
        steps.append("store the upload")
        return object_save(key=key, content=content)

    monkeypatch.setattr(services.create, "_ensure_below_active_limit", recording_limit)
    monkeypatch.setattr(services.create, "object_save", recording_save)

    _create_with_upload(owner)

    assert steps == ["count", "store the upload", "lock and count"]


def test_upload_is_removed_when_the_generation_is_not_recorded(owner, sent, monkeypatch):
    """Past the active limit under the lock (a concurrent submission won), the stored
    source is removed again: no object without a row."""
    checks = []

    def limit_reached_under_the_lock(owner, *, lock):
        checks.append(lock)
        if lock:
            raise LimitExceeded("You already have 10 generations pending or processing.")

    monkeypatch.setattr(services.create, "_ensure_below_active_limit", limit_reached_under_the_lock)

    with pytest.raises(LimitExceeded):
        _create_with_upload(owner)

    assert checks == [False, True]
    assert not Generation.objects.exists()
    assert list(object_keys("generations/")) == []


def test_an_unremovable_upload_is_left_for_repair_storage(owner, sent, monkeypatch, caplog):
    def storage_down(key):
        raise StorageUnavailable("the bucket went away")

    monkeypatch.setattr(services.create, "object_delete", storage_down)
    monkeypatch.setattr(services.create, "_ensure_below_active_limit", _refuse_under_the_lock)

    with pytest.raises(LimitExceeded):
        _create_with_upload(owner)

    assert not Generation.objects.exists()
    assert "repair_storage" in caplog.text


def _refuse_under_the_lock(owner, *, lock):
    if lock:
        raise LimitExceeded("Too many.")


def _create_with_upload(owner):
    return generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO_DEFAULT_VARIANTS, "prompt": ""},
        source_file=io.BytesIO(b"a source video"),
        source_filename="ad.mp4",
    )


def test_parent_is_recorded(owner, sent):
    parent = generation_create(owner=owner, kind="image", input={"prompt": "x"})
    child = generation_create(owner=owner, kind="image", input={"prompt": "x"}, parent=parent)

    assert child.parent == parent
    assert list(parent.regenerations.all()) == [child]
