"""Tests for `generations.pipeline.prepare` and its stages, driven in-process: starting a
generation, saving each stage, and failing every item when the input cannot be rendered."""

import hashlib

import pytest

from generations import source_fetch
from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.pipeline import stages
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.render import item_render
from generations.providers.local.video import render_video
from generations.services import generation_cancel
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import (
    SMALL_VIDEO,
    create_uploaded_video,
    create_video,
    item_of,
    prepare,
)
from storage.services import object_exists, object_keys

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


# Prepare ---------------------------------------------------------------------------------


def test_prepare_saves_the_stages_and_sets_item_prompts(owner):
    generation = _video(owner)

    item_ids = generation_prepare(generation_id=generation.id)

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
    first = generation_prepare(generation_id=generation.id)
    prompts = GenerationMetadata.objects.get(generation=generation).prompts
    started_at = Generation.objects.get(id=generation.id).started_at

    second = generation_prepare(generation_id=generation.id)

    assert stage_calls == [generation.id]
    assert sorted(second) == sorted(first)
    assert GenerationMetadata.objects.get(generation=generation).prompts == prompts
    assert Generation.objects.get(id=generation.id).started_at == started_at


def test_prepare_returns_only_items_still_queued(owner):
    generation = prepare(_video(owner))
    done = item_of(generation, "soft", 1)
    item_render(item_id=done.id, claim_token="w1")

    item_ids = generation_prepare(generation_id=generation.id)

    assert len(item_ids) == 3
    assert done.id not in item_ids


def test_prepare_of_a_cancelled_generation_does_nothing(owner, stage_calls):
    generation = generation_cancel(generation=_video(owner))

    assert generation_prepare(generation_id=generation.id) == []
    assert stage_calls == []


def test_transient_stage_error_is_raised_for_a_retry(owner, analysis_unavailable):
    generation = _video(owner)
    with pytest.raises(GenerationError):
        generation_prepare(generation_id=generation.id)

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

    assert generation_prepare(generation_id=generation.id) == []

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
