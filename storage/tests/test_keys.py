import uuid

import pytest

from storage.keys import asset_key, generation_prefix, source_key, thumbnail_key

GENERATION_ID = uuid.UUID("6f1c1e52-8a51-4a4f-9b5e-1d2f3a4b5c6d")


def test_video_item_keys():
    common = {"generation_id": GENERATION_ID, "variant_label": "soft", "number": 3}
    assert (
        asset_key(**common, kind="video_ad", extension="mp4")
        == f"generations/{GENERATION_ID}/soft/scene_3.mp4"
    )
    assert (
        thumbnail_key(**common, kind="video_ad")
        == f"generations/{GENERATION_ID}/soft/scene_3_thumb.jpg"
    )


def test_speech_track_keys():
    common = {"generation_id": str(GENERATION_ID), "variant_label": "narrator", "number": 1}
    assert (
        asset_key(**common, kind="speech", extension=".WAV")
        == f"generations/{GENERATION_ID}/narrator/track_1.wav"
    )
    assert (
        thumbnail_key(**common, kind="speech")
        == f"generations/{GENERATION_ID}/narrator/track_1_wave.png"
    )


def test_the_same_item_always_gets_the_same_key():
    arguments = {
        "generation_id": GENERATION_ID,
        "variant_label": "ultra",
        "number": 2,
        "kind": "image",
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
            kind="image",
            extension="png",
        )


@pytest.mark.parametrize("extension", ["", "mp4/../x", "verylongext"])
def test_unsafe_extensions_are_refused(extension):
    with pytest.raises(ValueError, match="extension"):
        asset_key(
            generation_id=GENERATION_ID,
            variant_label="soft",
            number=1,
            kind="video_ad",
            extension=extension,
        )


def test_item_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        thumbnail_key(generation_id=GENERATION_ID, variant_label="soft", number=0, kind="video_ad")


def test_prefix_refuses_something_that_is_not_a_uuid():
    with pytest.raises(ValueError, match="badly formed"):
        generation_prefix("../../etc")


def test_source_key_keeps_a_safe_extension_only():
    assert source_key(generation_id=GENERATION_ID, filename="clip.MOV").endswith(
        "source/original.mov"
    )
    assert source_key(generation_id=GENERATION_ID, filename="noext").endswith("original.bin")
    assert source_key(generation_id=GENERATION_ID, filename="x.a/b").endswith("original.bin")
