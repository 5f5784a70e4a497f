"""Tests for `generations.manifest`: the manifest of a real generation rendered through
the pipeline, and the archive entries that carry its media."""

import io
import json
import zipfile
from datetime import datetime
from decimal import Decimal

import pytest

from generations.manifest import (
    archive_filename,
    generation_archive_entries,
    generation_manifest,
)
from generations.models import Generation, Item
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.render import item_render
from generations.services import generation_create, generation_delete, generation_regenerate
from generations.states import GenerationStatus, ItemStatus
from storage.archive import stream_zip
from storage.services import object_open

pytestmark = pytest.mark.django_db

IMAGES = {"prompt": "x", "variants": ["a", "b"], "width": 64, "height": 64, "fail_items": ["b:1"]}
MANIFEST_QUERIES = 4


def _render(generation):
    for item_id in generation_prepare(generation_id=generation.id):
        item_render(item_id=item_id, claim_token="t")
    generation.refresh_from_db()
    return generation


@pytest.fixture
def images(owner):
    """One image completed (a:1) and one failed (b:1)."""
    return _render(generation_create(owner=owner, kind="image", input=IMAGES, title="Red fox"))


def _stored(key):
    with object_open(key) as stored:
        return stored.read()


def _items_by_path(manifest):
    return {
        (variant["label"], item["number"]): item
        for variant in manifest["variants"]
        for item in variant["items"]
    }


def _archive(generation):
    return zipfile.ZipFile(io.BytesIO(b"".join(stream_zip(generation_archive_entries(generation)))))


def test_manifest_describes_the_generation(images):
    manifest = generation_manifest(images)

    described = manifest["generation"]
    assert images.status == GenerationStatus.PARTIAL_SUCCESS
    assert described["id"] == str(images.id)
    assert described["kind"] == "image"
    assert described["title"] == "Red fox"
    assert described["prompt"] == "x"
    assert described["status"] == GenerationStatus.PARTIAL_SUCCESS
    assert described["provider"] == images.provider
    assert described["provider_model"] == images.provider_model
    assert described["created_at"] == images.created_at.isoformat()
    assert described["completed_at"] == images.completed_at.isoformat()
    assert described["generation_time_seconds"] == images.generation_time_seconds
    assert Decimal(described["actual_cost"]) == images.actual_cost
    assert Decimal(described["cost_estimate"]) == images.cost_estimate
    assert described["source_type"] == "none"
    assert manifest["parameters"] == images.input
    assert manifest["parameters"]["seed"] == images.input["seed"]
    assert set(manifest["metadata"]) == {"analysis", "transformation", "prompts", "evaluation"}
    assert manifest["metadata"]["prompts"] == images.metadata.prompts
    assert datetime.fromisoformat(manifest["exported_at"]).tzinfo is not None


def test_manifest_lists_variants_in_order_with_their_items(images):
    manifest = generation_manifest(images)

    assert [variant["label"] for variant in manifest["variants"]] == ["a", "b"]
    first, second = manifest["variants"]
    assert (first["status"], first["completed_items"], first["failed_items"]) == (
        GenerationStatus.COMPLETED,
        1,
        0,
    )
    assert (second["status"], second["completed_items"], second["failed_items"]) == (
        GenerationStatus.FAILED,
        0,
        1,
    )
    completed = Item.objects.get(generation=images, variant__label="a", number=1)
    assert first["items"] == [
        {
            "number": 1,
            "status": ItemStatus.COMPLETED,
            "prompt": completed.prompt,
            "file": "a/scene_1.png",
            "thumbnail": "a/scene_1_thumb.jpg",
            "duration_seconds": completed.duration_seconds,
            "width": 64,
            "height": 64,
            "file_size": completed.file_size,
            "content_type": completed.content_type,
            "checksum": completed.checksum,
            "cost": str(completed.cost),
            "attempts": 1,
            "error_code": "",
            "error_message": "",
        }
    ]


def test_failed_items_have_no_file(images):
    failed = _items_by_path(generation_manifest(images))[("b", 1)]

    assert failed["status"] == ItemStatus.FAILED
    assert failed["file"] is None
    assert failed["thumbnail"] is None
    assert failed["error_code"] == "provider_rejected"
    assert "fail_items" in failed["error_message"]


def test_manifest_is_json(images):
    manifest = generation_manifest(images)

    assert json.loads(json.dumps(manifest)) == manifest


def test_lineage_names_the_parent_and_live_regenerations(images, owner):
    first = generation_regenerate(generation=images, owner=owner)
    second = generation_regenerate(generation=images, owner=owner)
    trashed = generation_regenerate(generation=images, owner=owner)
    generation_delete(generation=trashed)

    assert generation_manifest(images)["lineage"] == {
        "parent": None,
        "regenerations": [str(first.id), str(second.id)],
    }
    assert generation_manifest(first)["lineage"] == {"parent": str(images.id), "regenerations": []}


def test_manifest_queries_do_not_grow_with_items(images, owner, django_assert_max_num_queries):
    generation_regenerate(generation=images, owner=owner)
    larger = generation_create(
        owner=owner,
        kind="image",
        input={**IMAGES, "variants": ["a", "b", "c", "d"], "images_per_variant": 4},
    )
    generation_regenerate(generation=larger, owner=owner)

    for generation in (Generation.objects.get(id=images.id), Generation.objects.get(id=larger.id)):
        with django_assert_max_num_queries(MANIFEST_QUERIES):
            generation_manifest(generation)
        with django_assert_max_num_queries(MANIFEST_QUERIES):
            generation_archive_entries(generation)


def test_archive_holds_the_stored_media_and_a_matching_manifest(images):
    completed = Item.objects.get(generation=images, variant__label="a", number=1)

    archive = _archive(images)

    assert archive.testzip() is None
    assert archive.namelist() == ["a/scene_1.png", "a/scene_1_thumb.jpg", "manifest.json"]
    assert archive.read("a/scene_1.png") == _stored(completed.asset_key)
    assert archive.read("a/scene_1_thumb.jpg") == _stored(completed.thumbnail_key)
    assert archive.getinfo("a/scene_1.png").compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED
    manifest = json.loads(archive.read("manifest.json"))
    paths = [
        path
        for item in _items_by_path(manifest).values()
        for path in (item["file"], item["thumbnail"])
        if path is not None
    ]
    assert paths == ["a/scene_1.png", "a/scene_1_thumb.jpg"]
    assert set(paths) <= set(archive.namelist())
    assert manifest["generation"]["id"] == str(images.id)


def test_archive_manifest_is_pretty_printed_with_sorted_keys(images):
    text = _archive(images).read("manifest.json").decode()

    assert text.startswith('{\n  "exported_at"')
    assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) == text


def test_speech_tracks_are_archived_with_their_waveforms(owner):
    speech = _render(generation_create(owner=owner, kind="speech", input={"text": "Hello there."}))

    archive = _archive(speech)

    assert archive.namelist() == [
        "narrator/track_1.wav",
        "narrator/track_1_wave.png",
        "manifest.json",
    ]
    assert archive.testzip() is None


def test_archive_entries_open_nothing_until_streamed(images, monkeypatch):
    opened = []
    monkeypatch.setattr("generations.manifest.object_open", opened.append)

    entries = generation_archive_entries(images)

    assert opened == []
    assert [entry.name for entry in entries] == [
        "a/scene_1.png",
        "a/scene_1_thumb.jpg",
        "manifest.json",
    ]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Red fox", "genvault-red-fox-{id}.zip"),
        ('  Ünïcödé / ../../etc "quotes" ', "genvault-unicode-etc-quotes-{id}.zip"),
        ("A" * 39 + " tail that is cut", "genvault-" + "a" * 39 + "-{id}.zip"),
        ("🦊", "genvault-{id}.zip"),
    ],
)
def test_archive_filename_is_safe(title, expected):
    generation = Generation(title=title)

    assert archive_filename(generation) == expected.format(id=str(generation.id)[:8])
