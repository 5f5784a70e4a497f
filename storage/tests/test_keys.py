import uuid

import pytest

from storage.keys import asset_key, generation_prefix, preview_key, source_key

GENERATION_ID = uuid.UUID("6f1c1e52-8a51-4a4f-9b5e-1d2f3a4b5c6d")


def test_video_item_keys():
    common = {"generation_id": GENERATION_ID, "variant_label": "soft", "number": 3}
    assert (
        asset_key(**common, stem="scene", extension="mp4")
        == f"generations/{GENERATION_ID}/soft/scene_3.mp4"
    )
    assert (
        preview_key(**common, stem="scene", suffix="thumb.jpg")
        == f"generations/{GENERATION_ID}/soft/scene_3_thumb.jpg"
    )


def test_speech_track_keys():
    common = {"generation_id": str(GENERATION_ID), "variant_label": "narrator", "number": 1}
    assert (
        asset_key(**common, stem="track", extension=".WAV")
        == f"generations/{GENERATION_ID}/narrator/track_1.wav"
    )
    assert (
        preview_key(**common, stem="track", suffix="wave.png")
        == f"generations/{GENERATION_ID}/narrator/track_1_wave.png"
    )


def test_the_same_item_always_gets_the_same_key():
    arguments = {
        "generation_id": GENERATION_ID,
        "variant_label": "ultra",
        "number": 2,
        "stem": "scene",
        "extension": "png",
    }
    assert asset_key(**arguments) == asset_key(**arguments)


@pytest.mark.parametrize("label", ["../etc", "Soft Label", "", "a/b", "x" * 51])
def test_unsafe_variant_labels_are_refused(label):
    with pytest.raises(ValueError, match="cannot be used"):
        asset_key(
            generation_id=GENERATION_ID,
            variant_label=label,
            number=1,
            stem="scene",
            extension="png",
        )


@pytest.mark.parametrize("extension", ["", "mp4/../x", "verylongext"])
def test_unsafe_extensions_are_refused(extension):
    with pytest.raises(ValueError, match="extension"):
        asset_key(
            generation_id=GENERATION_ID,
            variant_label="soft",
            number=1,
            stem="scene",
            extension=extension,
        )


def test_item_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        preview_key(
            generation_id=GENERATION_ID,
            variant_label="soft",
            number=0,
            stem="scene",
            suffix="thumb.jpg",
        )


def test_prefix_refuses_something_that_is_not_a_uuid():
    with pytest.raises(ValueError, match="badly formed"):
        generation_prefix("../../etc")


def test_source_key_keeps_a_safe_extension_only():
    assert source_key(generation_id=GENERATION_ID, filename="clip.MOV").endswith(
        "source/original.mov"
    )
    assert source_key(generation_id=GENERATION_ID, filename="noext").endswith("original.bin")
    assert source_key(generation_id=GENERATION_ID, filename="x.a/b").endswith("original.bin")


@pytest.mark.parametrize("stem", ["", "../x", "Scene"])
def test_unsafe_stems_are_refused(stem):
    with pytest.raises(ValueError, match="Stem"):
        asset_key(
            generation_id=GENERATION_ID, variant_label="soft", number=1, stem=stem, extension="mp4"
        )


@pytest.mark.parametrize("suffix", ["thumb", "../x.jpg", "thumb.jpg/x"])
def test_unsafe_preview_suffixes_are_refused(suffix):
    with pytest.raises(ValueError, match="suffix"):
        preview_key(
            generation_id=GENERATION_ID, variant_label="soft", number=1, stem="scene", suffix=suffix
        )
