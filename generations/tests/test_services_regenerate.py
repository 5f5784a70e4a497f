"""Tests for `generation_regenerate`: a new generation from the stored snapshot."""

import pytest

from generations import dispatch
from generations.errors import InputError
from generations.models import Generation, Item, SourceType
from generations.services import generation_create, generation_regenerate
from generations.states import GenerationStatus
from generations.tests.pipeline_helpers import create_uploaded_video, create_video, run_pipeline
from storage.services import object_exists, object_keys, object_open

pytestmark = pytest.mark.django_db

VARIANTS = ["soft", "ultra"]


def _create(owner, **overrides):
    return create_video(owner, title="Pasta night", **{"variants": VARIANTS, **overrides})


def _prompts(generation):
    return {
        (label, number): prompt
        for label, number, prompt in Item.objects.filter(generation=generation).values_list(
            "variant__label", "number", "prompt"
        )
    }


def _checksums(generation):
    return {
        (label, number): checksum
        for label, number, checksum in Item.objects.filter(generation=generation).values_list(
            "variant__label", "number", "checksum"
        )
    }


def test_same_input_and_seed_give_the_same_media(owner):
    parent = run_pipeline(_create(owner, scenes_per_variant=3))
    assert parent.status == GenerationStatus.COMPLETED

    children = [
        run_pipeline(generation_regenerate(generation=parent, owner=owner)) for _ in range(2)
    ]

    parent_checksums = _checksums(parent)
    assert len(parent_checksums) == 6
    assert all(parent_checksums.values())
    for child in children:
        assert child.id != parent.id
        assert child.status == GenerationStatus.COMPLETED
        assert child.input == parent.input
        assert child.input["seed"] == parent.input["seed"]
        assert _prompts(child) == _prompts(parent)
        child_keys = Item.objects.filter(generation=child).values_list("asset_key", flat=True)
        assert all(key.startswith(f"generations/{child.id}/") for key in child_keys)
    assert [_checksums(child) for child in children] == [parent_checksums, parent_checksums]


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("image", {"prompt": "A red bicycle", "variants": ["a", "b"], "width": 64, "height": 64}),
        ("speech", {"text": "Spring is here. Everything is half price this week."}),
    ],
)
def test_same_input_and_seed_give_the_same_image_and_speech(owner, kind, raw):
    parent = run_pipeline(generation_create(owner=owner, kind=kind, input=raw))

    child = run_pipeline(generation_regenerate(generation=parent, owner=owner))

    assert child.status == parent.status == GenerationStatus.COMPLETED
    assert all(_checksums(parent).values())
    assert _checksums(child) == _checksums(parent)


def test_another_seed_gives_other_media(owner):
    parent = run_pipeline(_create(owner, variants=["soft"], scenes_per_variant=1, seed=1))

    child = run_pipeline(
        generation_regenerate(generation=parent, owner=owner, overrides={"seed": 2})
    )

    assert child.input["seed"] == 2
    assert _checksums(child)[("soft", 1)] != _checksums(parent)[("soft", 1)]


def test_regenerate_records_the_parent_and_keeps_the_title(owner):
    parent = _create(owner)

    child = generation_regenerate(generation=parent, owner=owner)

    assert child.parent == parent
    assert child.title == "Pasta night"
    assert child.owner == owner
    assert child.status == GenerationStatus.PENDING
    assert child.kind == parent.kind
    assert child.total_items == parent.total_items
    assert list(parent.regenerations.all()) == [child]


def test_regenerate_is_enqueued_on_commit(owner, sent, django_capture_on_commit_callbacks):
    parent = _create(owner)

    with django_capture_on_commit_callbacks(execute=True):
        child = generation_regenerate(generation=parent, owner=owner)

    assert sent == [(dispatch.RUN_GENERATION, child.id, None)]


def test_overrides_are_applied(owner):
    parent = _create(owner)

    child = generation_regenerate(
        generation=parent,
        owner=owner,
        overrides={"title": "Shorter cut", "scenes_per_variant": 1, "variants": ["medium"]},
    )

    child.refresh_from_db()
    assert child.title == "Shorter cut"
    assert child.input["scenes_per_variant"] == 1
    assert child.input["variants"] == ["medium"]
    assert child.input["seed"] == parent.input["seed"]
    assert child.input["prompt"] == parent.input["prompt"]
    assert child.total_items == 1
    assert "title" not in child.input
    parent.refresh_from_db()
    assert parent.input["variants"] == ["soft", "ultra"]


def test_invalid_overrides_are_refused(owner):
    parent = _create(owner)

    with pytest.raises(InputError) as caught:
        generation_regenerate(generation=parent, owner=owner, overrides={"width": 161, "fps": 99})

    assert set(caught.value.fields) == {"width", "fps"}
    assert Generation.objects.count() == 1


def test_unknown_model_override_is_refused(owner):
    parent = _create(owner)

    with pytest.raises(InputError) as caught:
        generation_regenerate(generation=parent, owner=owner, overrides={"model": "nope"})

    assert list(caught.value.fields) == ["model"]
    assert Generation.objects.count() == 1


def test_upload_source_is_copied_to_the_new_generation(owner):
    payload = b"\x00\x00\x00\x18ftypmp42 stand-in for a source video"
    parent = create_uploaded_video(owner, payload, "ad.mp4", variants=VARIANTS)
    parent.refresh_from_db()
    parent_key = parent.input["source_key"]

    child = generation_regenerate(generation=parent, owner=owner)

    child.refresh_from_db()
    child_key = f"generations/{child.id}/source/original.mp4"
    assert child.input["source_key"] == child_key
    assert child.source_type == SourceType.UPLOAD
    assert list(object_keys(f"generations/{child.id}/")) == [child_key]
    with object_open(child_key) as stored:
        assert stored.read() == payload
    assert object_exists(parent_key)
    assert {k: v for k, v in child.input.items() if k != "source_key"} == {
        k: v for k, v in parent.input.items() if k != "source_key"
    }


def test_source_url_override_replaces_the_upload(owner):
    parent = create_uploaded_video(owner, b"video", "ad.mp4", variants=VARIANTS)

    child = generation_regenerate(
        generation=parent, owner=owner, overrides={"source_url": "https://example.com/ad.mp4"}
    )

    child.refresh_from_db()
    assert child.source_type == SourceType.URL
    assert child.source_url == "https://example.com/ad.mp4"
    assert "source_key" not in child.input
    assert list(object_keys(f"generations/{child.id}/")) == []
