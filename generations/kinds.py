"""What differs between kinds of generation, in one `KindSpec` per kind.

Every per-kind decision reads the spec: what a kind's items are called, which input
fields it takes (with their defaults, limits and form labels), how many items each
variant gets and with which prompts, how an item's preview is drawn and under which
storage key stem it is kept, how its cost is counted, and which player shows it. Adding a
kind means adding a spec here, plus support in the providers that can make it.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from django.db import models

from generations import prompting
from generations.media.previews import image_thumbnail, video_thumbnail, waveform_png
from generations.media.probe import probe


class GenerationKind(models.TextChoices):
    VIDEO_AD = "video_ad", "Video ad"
    SPEECH = "speech", "Speech"
    IMAGE = "image", "Image"


FieldType = Literal["integer", "number", "even_size", "text", "url"]
Player = Literal["video", "audio", "image"]


@dataclass(frozen=True)
class InputField:
    """One field of a kind's input: how it is validated and how a form shows it."""

    name: str
    type: FieldType
    label: str
    default: int | float | str = ""
    low: float = 0
    high: float = 0
    # Text: whether it must be given, and its longest length.
    required: bool = False
    max_chars: int = 0
    help_text: str = ""
    # Shown folded under "Advanced" on the form.
    advanced: bool = False
    multiline: bool = False


@dataclass(frozen=True)
class KindSpec:
    kind: GenerationKind
    item_noun: str
    item_nouns: str
    default_variants: tuple[str, ...]
    # Labels offered as checkboxes on the form (others can be typed); none: typed only.
    variant_presets: tuple[str, ...]
    variants_help: str
    # The input field whose text becomes the generation's prompt, and an example of it
    # (what `manage.py generate` makes when given none).
    text_field: str
    example_text: str
    fields: tuple[InputField, ...]
    # Whether a source video (URL or upload) can be given for analysis.
    accepts_source: bool
    # The prompt of each item every variant gets when the generation is created.
    item_prompts: Callable[[Mapping[str, Any]], list[str]]
    # The prompts stage: every item's prompt, by variant label.
    write_prompts: Callable[[prompting.PromptRequest], dict[str, list[str]]]
    # Checks across fields, given the snapshot and whether a file was uploaded:
    # messages by field name.
    check: Callable[[Mapping[str, Any], bool], dict[str, list[str]]]
    # Storage: `{stem}_{n}.{ext}`, and the preview at `{stem}_{n}_{preview_suffix}`.
    key_stem: str
    preview_suffix: str
    draw_preview: Callable[[Path, Path], None]
    player: Player
    # What one unit of cost is, how many units an item should take (before it runs) and
    # how many it took (from its file and prompt).
    cost_unit: str
    estimated_units: Callable[[Mapping[str, Any], str], Decimal]
    measured_units: Callable[[Path, str], Decimal]

    @property
    def label(self) -> str:
        return str(self.kind.label)

    def noun(self, count: int) -> str:
        """`scene` or `scenes`, as `count` asks."""
        return self.item_noun if count == 1 else self.item_nouns

    def count(self, count: int) -> str:
        """`1 scene`, `16 scenes`."""
        return f"{count} {self.noun(count)}"

    def field(self, name: str) -> InputField:
        return next(field for field in self.fields if field.name == name)


# Speech text -------------------------------------------------------------------------

MAX_SPEECH_TRACKS = 64
_MIN_SECTION_CHARS = 20
# A sentence runs to terminal punctuation (plus closing quotes or brackets) that is
# followed by whitespace, or to the end of the text.
_SENTENCE = re.compile(r"\S.*?(?:[.!?…]+[\"'\u201d\u2019)\]]*(?=\s|$)|$)")


def split_speech_sections(text: str, *, max_chars: int = 400) -> list[str]:
    """Split text into speakable sections of at most ``max_chars`` characters: a speech
    generation's tracks.

    One section per sentence; very short sentences are merged with a neighbour and
    over-long ones are split at word boundaries. Blank text gives an empty list.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in _SENTENCE.findall(" ".join(paragraph.split())):
            pieces.extend(_split_long(sentence.strip(), max_chars))
    sections: list[str] = []
    for piece in pieces:
        if sections:
            merged = f"{sections[-1]} {piece}"
            is_short = min(len(sections[-1]), len(piece)) < _MIN_SECTION_CHARS
            if is_short and len(merged) <= max_chars:
                sections[-1] = merged
                continue
        sections.append(piece)
    return sections


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Break one sentence into word-boundary chunks of at most ``max_chars``."""
    chunks: list[str] = []
    current = ""
    for word in sentence.split():
        while len(word) > max_chars:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:max_chars])
            word = word[max_chars:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= max_chars:
            current = f"{current} {word}"
        else:
            chunks.append(current)
            current = word
    if current:
        chunks.append(current)
    return chunks


# The specs ---------------------------------------------------------------------------

MAX_PROMPT_CHARS = 4000
MAX_SPEECH_CHARS = 20_000


def _no_checks(snapshot: Mapping[str, Any], has_upload: bool) -> dict[str, list[str]]:
    return {}


def _check_video_ad(snapshot: Mapping[str, Any], has_upload: bool) -> dict[str, list[str]]:
    errors = {}
    if snapshot["source_url"] and has_upload:
        errors["source_url"] = ["Give a source URL or upload a file, not both."]
    if not (snapshot["prompt"] or snapshot["source_url"] or has_upload):
        errors["prompt"] = ["This field is required."]
    return errors


def _check_speech(snapshot: Mapping[str, Any], has_upload: bool) -> dict[str, list[str]]:
    if len(split_speech_sections(str(snapshot["text"]))) > MAX_SPEECH_TRACKS:
        return {"text": [f"Splits into more than {MAX_SPEECH_TRACKS} tracks; shorten it."]}
    return {}


def _writing(
    name: str, label: str, help_text: str, *, max_chars: int, required: bool = True
) -> InputField:
    """A text a person writes, on several lines: a prompt, a script."""
    return InputField(
        name,
        "text",
        label,
        required=required,
        max_chars=max_chars,
        multiline=True,
        help_text=help_text,
    )


def _per_item(units: str) -> Callable[[Mapping[str, Any], str], Decimal]:
    return lambda parameters, prompt: Decimal(units)


def _characters(prompt: str) -> Decimal:
    return Decimal(len(prompt)) / 1000


def _video_seconds(path: Path, prompt: str) -> Decimal:
    return Decimal(str(probe(path).duration_seconds or 0)).quantize(Decimal("0.001"))


VIDEO_AD = KindSpec(
    kind=GenerationKind.VIDEO_AD,
    item_noun="scene",
    item_nouns="scenes",
    default_variants=("soft", "medium", "aggressive", "ultra"),
    variant_presets=("soft", "medium", "aggressive", "ultra"),
    variants_help="One version of the ad each, from gentle to pushy.",
    text_field="prompt",
    example_text="A reusable water bottle on a mountain trail at sunrise",
    fields=(
        # Required unless a source is given: checked by _check_video_ad.
        _writing(
            "prompt",
            "Prompt",
            "What the ad shows. Optional when a source URL or file is given.",
            max_chars=MAX_PROMPT_CHARS,
            required=False,
        ),
        InputField("scenes_per_variant", "integer", "Scenes per variant", 4, 1, 12),
        InputField("scene_seconds", "number", "Seconds per scene", 3.0, 1.0, 10.0),
        InputField(
            "source_url",
            "url",
            "Source URL",
            max_chars=2000,
            help_text="A video or page to analyse first (http or https).",
        ),
        InputField("width", "even_size", "Width (px)", 640, 160, 1920, advanced=True),
        InputField("height", "even_size", "Height (px)", 360, 90, 1080, advanced=True),
        InputField("fps", "integer", "Frames per second", 24, 12, 30, advanced=True),
    ),
    accepts_source=True,
    item_prompts=lambda snapshot: [""] * int(snapshot["scenes_per_variant"]),
    write_prompts=prompting.story_prompts,
    check=_check_video_ad,
    key_stem="scene",
    preview_suffix="thumb.jpg",
    draw_preview=lambda source, target: video_thumbnail(source, target),
    player="video",
    cost_unit="second of video",
    estimated_units=lambda parameters, prompt: Decimal(str(parameters["scene_seconds"])),
    measured_units=_video_seconds,
)

SPEECH = KindSpec(
    kind=GenerationKind.SPEECH,
    item_noun="track",
    item_nouns="tracks",
    default_variants=("narrator",),
    variant_presets=(),
    variants_help="Comma-separated voice labels, e.g. “narrator, calm”.",
    text_field="text",
    example_text=(
        "Meet the bottle that goes wherever you go. It keeps water cold for a whole day. "
        "Order yours today."
    ),
    fields=(
        _writing(
            "text",
            "Text",
            "What is read aloud, split into tracks of about a sentence each.",
            max_chars=MAX_SPEECH_CHARS,
        ),
        InputField("words_per_minute", "integer", "Words per minute", 160, 80, 320),
    ),
    accepts_source=False,
    item_prompts=lambda snapshot: split_speech_sections(str(snapshot["text"])),
    write_prompts=prompting.section_prompts,
    check=_check_speech,
    key_stem="track",
    preview_suffix="wave.png",
    draw_preview=lambda source, target: waveform_png(source, target),
    player="audio",
    cost_unit="1,000 characters",
    estimated_units=lambda parameters, prompt: _characters(prompt),
    measured_units=lambda path, prompt: _characters(prompt),
)

IMAGE = KindSpec(
    kind=GenerationKind.IMAGE,
    item_noun="image",
    item_nouns="images",
    default_variants=("default",),
    variant_presets=(),
    variants_help="Comma-separated labels, e.g. “default, bold”.",
    text_field="prompt",
    example_text="A reusable water bottle on a mountain trail at sunrise",
    fields=(
        _writing("prompt", "Prompt", "What the image shows.", max_chars=MAX_PROMPT_CHARS),
        InputField("images_per_variant", "integer", "Images per variant", 1, 1, 8),
        InputField("width", "even_size", "Width (px)", 1024, 64, 2048),
        InputField("height", "even_size", "Height (px)", 576, 64, 2048),
    ),
    accepts_source=False,
    item_prompts=lambda snapshot: [str(snapshot["prompt"])] * int(snapshot["images_per_variant"]),
    write_prompts=prompting.styled_prompts,
    check=_no_checks,
    # Images share the scenes' key layout.
    key_stem="scene",
    preview_suffix="thumb.jpg",
    draw_preview=lambda source, target: image_thumbnail(source, target),
    player="image",
    cost_unit="image",
    estimated_units=_per_item("1"),
    measured_units=lambda path, prompt: Decimal(1),
)

KINDS: dict[str, KindSpec] = {spec.kind.value: spec for spec in (VIDEO_AD, SPEECH, IMAGE)}


def kind_spec(kind: str) -> KindSpec:
    """The spec of `kind`; raises KeyError for an unknown one."""
    return KINDS[kind]
