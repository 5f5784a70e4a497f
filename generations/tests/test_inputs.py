"""Tests for `generations.inputs.normalise_input`: defaults, the seed and every error path."""

import pytest

from generations.errors import InputError
from generations.inputs import MAX_VARIANTS, normalise_input
from generations.kinds import MAX_PROMPT_CHARS, MAX_SPEECH_CHARS, MAX_SPEECH_TRACKS, kind_spec

PROMPT = "A bright kitchen, a family cooking pasta together"
SPEECH_TEXT = "Welcome to the spring sale. Everything in the kitchen is half price this week."


def _errors(kind, raw, **options):
    with pytest.raises(InputError) as caught:
        normalise_input(kind, raw, **options)
    return caught.value.fields


# Defaults --------------------------------------------------------------------------------


def test_video_ad_defaults():
    snapshot = normalise_input("video_ad", {"prompt": PROMPT})

    assert snapshot["variants"] == ["soft", "medium", "aggressive", "ultra"]
    assert snapshot["scenes_per_variant"] == 4
    assert snapshot["scene_seconds"] == 3.0
    assert (snapshot["width"], snapshot["height"], snapshot["fps"]) == (640, 360, 24)
    assert snapshot["prompt"] == PROMPT
    assert snapshot["source_url"] == ""
    assert snapshot["fail_items"] == []
    assert snapshot["transient_fail_items"] == []
    assert snapshot["fail_attempts"] == 1
    assert snapshot["fail_rate"] == 0.0
    assert snapshot["delay_ms"] == 0


def test_speech_defaults():
    snapshot = normalise_input("speech", {"text": SPEECH_TEXT})

    assert snapshot["variants"] == ["narrator"]
    assert snapshot["words_per_minute"] == 160
    assert snapshot["text"] == SPEECH_TEXT
    assert "prompt" not in snapshot
    assert "width" not in snapshot


def test_image_defaults():
    snapshot = normalise_input("image", {"prompt": PROMPT})

    assert snapshot["variants"] == ["default"]
    assert snapshot["images_per_variant"] == 1
    assert (snapshot["width"], snapshot["height"]) == (1024, 576)


def test_text_fields_are_stripped_and_labels_lowercased():
    snapshot = normalise_input(
        "video_ad", {"prompt": f"  {PROMPT}\n", "variants": [" Soft ", "BOLD"]}
    )

    assert snapshot["prompt"] == PROMPT
    assert snapshot["variants"] == ["soft", "bold"]


def test_given_values_are_kept():
    raw = {
        "prompt": PROMPT,
        "variants": ["a", "b"],
        "scenes_per_variant": 2,
        "scene_seconds": 1,
        "width": 160,
        "height": 90,
        "fps": 12,
        "fail_items": ["a:1", 2],
        "fail_attempts": 3,
        "transient_fail_items": ["B:2"],
        "fail_rate": 0.5,
        "delay_ms": 250,
    }
    snapshot = normalise_input("video_ad", raw)

    assert snapshot["scenes_per_variant"] == 2
    assert snapshot["scene_seconds"] == 1.0
    assert isinstance(snapshot["scene_seconds"], float)
    assert (snapshot["width"], snapshot["height"], snapshot["fps"]) == (160, 90, 12)
    assert snapshot["fail_items"] == ["a:1", "2"]
    assert snapshot["transient_fail_items"] == ["b:2"]
    assert snapshot["fail_attempts"] == 3
    assert snapshot["fail_rate"] == 0.5
    assert snapshot["delay_ms"] == 250


def test_an_unknown_field_is_refused_by_name():
    errors = _errors("image", {"prompt": PROMPT, "colour": "red"})

    assert list(errors) == ["colour"]
    assert "Unknown field for image" in errors["colour"][0]
    assert "images_per_variant" in errors["colour"][0]


def test_a_misspelt_field_is_refused_rather_than_defaulted():
    errors = _errors("video_ad", {"prompt": PROMPT, "scene_second": 5})

    assert list(errors) == ["scene_second"]


def test_another_kinds_field_is_refused():
    errors = _errors("speech", {"text": SPEECH_TEXT, "scenes_per_variant": 2})

    assert list(errors) == ["scenes_per_variant"]


def test_fault_fields_are_refused_for_a_provider_without_fault_injection():
    raw = {"prompt": PROMPT, "fail_items": ["1"], "delay_ms": 5}

    errors = _errors("image", raw, fault_injection=False)

    assert set(errors) == {"fail_items", "delay_ms"}
    assert "fault injection" in errors["delay_ms"][0]


def test_without_fault_injection_the_snapshot_has_no_fault_fields():
    snapshot = normalise_input("image", {"prompt": PROMPT}, fault_injection=False)

    assert not {"fail_items", "fail_rate", "delay_ms"} & set(snapshot)


def test_items_per_variant_by_kind():
    video = normalise_input("video_ad", {"prompt": PROMPT, "scenes_per_variant": 3})
    image = normalise_input("image", {"prompt": PROMPT, "images_per_variant": 2})
    speech = normalise_input("speech", {"text": SPEECH_TEXT})

    assert kind_spec("video_ad").item_prompts(video) == ["", "", ""]
    assert kind_spec("image").item_prompts(image) == [PROMPT, PROMPT]
    assert kind_spec("speech").item_prompts(speech) == [
        "Welcome to the spring sale.",
        "Everything in the kitchen is half price this week.",
    ]


# Seed ------------------------------------------------------------------------------------


def test_random_seed_is_filled_in_when_missing():
    seeds = {normalise_input("image", {"prompt": PROMPT})["seed"] for _ in range(5)}

    assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in seeds)
    assert len(seeds) > 1


def test_random_seed_is_filled_in_when_null():
    seed = normalise_input("image", {"prompt": PROMPT, "seed": None})["seed"]

    assert isinstance(seed, int)
    assert 0 <= seed < 2**31


@pytest.mark.parametrize("seed", [0, 42, 2**31 - 1])
def test_given_seed_is_kept(seed):
    assert normalise_input("image", {"prompt": PROMPT, "seed": seed})["seed"] == seed


@pytest.mark.parametrize("seed", [-1, 2**31, "42", 4.5, True])
def test_bad_seed_is_refused(seed):
    assert "seed" in _errors("image", {"prompt": PROMPT, "seed": seed})


def test_snapshot_replays_to_itself():
    """A stored snapshot given back as input (regenerate) normalises to the same snapshot."""
    snapshot = normalise_input("video_ad", {"prompt": PROMPT, "variants": ["soft"]})

    assert normalise_input("video_ad", dict(snapshot)) == snapshot


# Error paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scenes_per_variant", "4"),
        ("scenes_per_variant", 2.5),
        ("scenes_per_variant", True),
        ("scenes_per_variant", None),
        ("fps", "24"),
        ("fail_attempts", 1.0),
        ("delay_ms", [100]),
        ("scene_seconds", "3"),
        ("scene_seconds", False),
        ("fail_rate", "0.1"),
        ("width", "640"),
        ("prompt", 123),
        ("source_url", ["http://example.com/ad.mp4"]),
    ],
)
def test_bad_type_names_its_field(field, value):
    raw = {"prompt": PROMPT, field: value}

    errors = _errors("video_ad", raw)

    assert list(errors) == [field]
    assert errors[field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scenes_per_variant", 0),
        ("scenes_per_variant", 13),
        ("scene_seconds", 0.5),
        ("scene_seconds", 10.5),
        ("width", 158),
        ("width", 1922),
        ("height", 88),
        ("height", 1082),
        ("fps", 11),
        ("fps", 31),
        ("fail_attempts", 0),
        ("fail_attempts", 11),
        ("fail_rate", -0.1),
        ("fail_rate", 1.5),
        ("delay_ms", -1),
        ("delay_ms", 60_001),
    ],
)
def test_out_of_range_names_its_field(field, value):
    errors = _errors("video_ad", {"prompt": PROMPT, field: value})

    assert list(errors) == [field]
    assert "between" in errors[field][0]


@pytest.mark.parametrize(
    ("kind", "field", "value", "text"),
    [
        ("speech", "words_per_minute", 79, {"text": SPEECH_TEXT}),
        ("speech", "words_per_minute", 321, {"text": SPEECH_TEXT}),
        ("image", "images_per_variant", 9, {"prompt": PROMPT}),
        ("image", "width", 62, {"prompt": PROMPT}),
        ("image", "height", 2050, {"prompt": PROMPT}),
    ],
)
def test_out_of_range_names_its_field_for_other_kinds(kind, field, value, text):
    errors = _errors(kind, {**text, field: value})

    assert list(errors) == [field]


@pytest.mark.parametrize(
    ("kind", "raw", "field"),
    [
        ("video_ad", {"prompt": PROMPT, "width": 641}, "width"),
        ("video_ad", {"prompt": PROMPT, "height": 91}, "height"),
        ("image", {"prompt": PROMPT, "width": 65}, "width"),
        ("image", {"prompt": PROMPT, "height": 577}, "height"),
    ],
)
def test_odd_size_is_refused(kind, raw, field):
    errors = _errors(kind, raw)

    assert list(errors) == [field]
    assert errors[field] == ["Must be an even number of pixels."]


def test_prompt_too_long_is_refused():
    errors = _errors("image", {"prompt": "x" * (MAX_PROMPT_CHARS + 1)})

    assert list(errors) == ["prompt"]


def test_speech_text_too_long_is_refused():
    errors = _errors("speech", {"text": "word " * (MAX_SPEECH_CHARS // 5 + 1)})

    assert list(errors) == ["text"]


# Variants --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        "soft",
        ["soft", 2],
        {"soft": 1},
    ],
)
def test_variants_must_be_a_list_of_labels(variants):
    errors = _errors("video_ad", {"prompt": PROMPT, "variants": variants})

    assert errors == {"variants": ["Must be a list of labels."]}


def test_duplicate_labels_are_refused_after_normalising():
    errors = _errors("video_ad", {"prompt": PROMPT, "variants": ["soft", " SOFT"]})

    assert errors == {"variants": ["Variant labels must be unique."]}


@pytest.mark.parametrize("label", ["has space", "café", "-dash-first", "a/b", "", "x" * 51])
def test_invalid_label_is_refused(label):
    errors = _errors("video_ad", {"prompt": PROMPT, "variants": ["soft", label]})

    assert list(errors) == ["variants"]
    assert "is not a valid label" in errors["variants"][0]


def test_no_variants_is_refused():
    errors = _errors("video_ad", {"prompt": PROMPT, "variants": []})

    assert list(errors) == ["variants"]


def test_too_many_variants_is_refused():
    labels = [f"v{n}" for n in range(MAX_VARIANTS + 1)]

    assert list(_errors("video_ad", {"prompt": PROMPT, "variants": labels})) == ["variants"]


def test_most_variants_allowed():
    labels = [f"v{n}" for n in range(MAX_VARIANTS)]

    assert normalise_input("video_ad", {"prompt": PROMPT, "variants": labels})["variants"] == labels


# Item references -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["fail_items", "transient_fail_items"])
@pytest.mark.parametrize("ref", ["soft:0", "soft:x", "0", "-1", "soft", "", "1.5", True, ":2"])
def test_bad_item_reference_is_refused(field, ref):
    errors = _errors("video_ad", {"prompt": PROMPT, field: ["soft:1", ref]})

    assert list(errors) == [field]
    assert len(errors[field]) == 1
    assert "is not an item reference" in errors[field][0]


@pytest.mark.parametrize("field", ["fail_items", "transient_fail_items"])
def test_item_references_must_be_a_list(field):
    errors = _errors("video_ad", {"prompt": PROMPT, field: "soft:1"})

    assert list(errors) == [field]


# Source and required text -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/ad.mp4", "file:///etc/passwd", "example.com/ad.mp4", "http://", "//x"],
)
def test_source_url_must_be_http(url):
    errors = _errors("video_ad", {"source_url": url})

    assert errors == {"source_url": ["Must be an http(s) URL."]}


def test_source_url_replaces_the_prompt():
    snapshot = normalise_input("video_ad", {"source_url": "https://example.com/ad.mp4"})

    assert snapshot["prompt"] == ""
    assert snapshot["source_url"] == "https://example.com/ad.mp4"


def test_upload_replaces_the_prompt():
    snapshot = normalise_input("video_ad", {}, has_upload=True)

    assert snapshot["prompt"] == ""
    assert snapshot["source_url"] == ""


def test_source_url_and_upload_together_are_refused():
    errors = _errors("video_ad", {"source_url": "https://example.com/ad.mp4"}, has_upload=True)

    assert list(errors) == ["source_url"]


@pytest.mark.parametrize("prompt", [None, "", "   \n"])
def test_prompt_required_without_a_source(prompt):
    errors = _errors("video_ad", {"prompt": prompt})

    assert errors == {"prompt": ["This field is required."]}


def test_image_takes_no_source_and_still_needs_its_prompt():
    errors = _errors("image", {"source_url": "https://example.com/a.png"})

    assert set(errors) == {"source_url", "prompt"}


@pytest.mark.parametrize("text", [None, "", "  "])
def test_speech_text_is_required(text):
    errors = _errors("speech", {"text": text})

    assert errors == {"text": ["This field is required."]}


def test_speech_splitting_into_too_many_tracks_is_refused():
    sentence = "This sentence is long enough to stay a section of its own."
    text = " ".join([sentence] * (MAX_SPEECH_TRACKS + 1))

    errors = _errors("speech", {"text": text})

    assert list(errors) == ["text"]
    assert str(MAX_SPEECH_TRACKS) in errors["text"][0]


def test_speech_with_the_most_tracks_is_accepted():
    sentence = "This sentence is long enough to stay a section of its own."
    text = " ".join([sentence] * MAX_SPEECH_TRACKS)

    snapshot = normalise_input("speech", {"text": text})

    assert len(kind_spec("speech").item_prompts(snapshot)) == MAX_SPEECH_TRACKS


# Collected errors and unknown kinds -------------------------------------------------------


def test_every_error_is_collected_at_once():
    raw = {
        "seed": -5,
        "variants": ["soft", "soft"],
        "fail_items": ["nope"],
        "fail_rate": 2,
        "scenes_per_variant": 99,
        "scene_seconds": "long",
        "width": 161,
        "height": 5000,
        "fps": 60,
        "source_url": "ftp://example.com/a.mp4",
    }

    errors = _errors("video_ad", raw)

    assert set(errors) == {
        "seed",
        "variants",
        "fail_items",
        "fail_rate",
        "scenes_per_variant",
        "scene_seconds",
        "width",
        "height",
        "fps",
        "source_url",
    }


def test_error_message_names_every_field():
    with pytest.raises(InputError) as caught:
        normalise_input("image", {"prompt": "", "width": 3})

    assert "prompt:" in str(caught.value)
    assert "width:" in str(caught.value)


@pytest.mark.parametrize("kind", ["podcast", "", "VIDEO_AD"])
def test_unknown_kind_is_refused(kind):
    errors = _errors(kind, {"prompt": PROMPT})

    assert list(errors) == ["kind"]
    assert "video_ad" in errors["kind"][0]


@pytest.mark.parametrize("raw", [None, ["prompt"], "prompt"])
def test_input_must_be_an_object(raw):
    assert list(_errors("image", raw)) == ["input"]
