"""Validation of a generation's input: checks each field of the kind's schema, fills in
defaults (including a random seed, so that the stored snapshot replays exactly) and
returns the normalised snapshot stored as `Generation.input`."""

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from generations.errors import InputError
from generations.models import GenerationKind
from generations.providers.local_render import split_speech_sections
from storage.keys import is_valid_variant_label

DEFAULT_VARIANTS = {
    GenerationKind.VIDEO_AD: ["soft", "medium", "aggressive", "ultra"],
    GenerationKind.SPEECH: ["narrator"],
    GenerationKind.IMAGE: ["default"],
}
MAX_VARIANTS = 8
MAX_PROMPT_CHARS = 4000
MAX_SPEECH_CHARS = 20_000
MAX_SPEECH_TRACKS = 64


@dataclass
class _Reader:
    """Reads fields out of a raw input mapping, collecting every error at once."""

    raw: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, "Must be a whole number.")
            return default
        if not low <= value <= high:
            self.error(name, f"Must be between {low} and {high}.")
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(name, "Must be a number.")
            return default
        if not low <= value <= high:
            self.error(name, f"Must be between {low} and {high}.")
            return default
        return float(value)

    def text(self, name: str, *, required: bool, max_chars: int) -> str:
        raw = self.raw.get(name) or ""
        if not isinstance(raw, str):
            self.error(name, "Must be text.")
            return ""
        value = raw.strip()
        if required and not value:
            self.error(name, "This field is required.")
        elif len(value) > max_chars:
            self.error(name, f"Must be at most {max_chars} characters.")
        return value

    def even_size(self, name: str, default: int, low: int, high: int) -> int:
        value = self.integer(name, default, low, high)
        if value % 2:
            self.error(name, "Must be an even number of pixels.")
        return value

    def labels(self, name: str, default: list[str]) -> list[str]:
        value = self.raw.get(name, default)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.error(name, "Must be a list of labels.")
            return default
        labels = [item.strip().lower() for item in value]
        if not 1 <= len(labels) <= MAX_VARIANTS:
            self.error(name, f"Give between 1 and {MAX_VARIANTS} variants.")
        if len(set(labels)) != len(labels):
            self.error(name, "Variant labels must be unique.")
        for label in labels:
            if not is_valid_variant_label(label):
                self.error(
                    name,
                    f"{label!r} is not a valid label: use lowercase letters, digits, - and _.",
                )
        return labels

    def item_refs(self, name: str, labels: list[str]) -> list[str]:
        """Items named as "label:n" or "n" (item n of every variant)."""
        value = self.raw.get(name, [])
        if not isinstance(value, list):
            self.error(name, 'Must be a list such as ["soft:2", 3].')
            return []
        refs = []
        for item in value:
            ref = str(item).strip().lower()
            label, colon, number = ref.rpartition(":")
            if not number.isdigit() or int(number) < 1 or (colon and not label):
                self.error(name, f"{item!r} is not an item reference such as 'soft:2' or 3.")
                continue
            if label and label not in labels:
                self.error(name, f"{item!r} names a variant that is not in variants.")
                continue
            refs.append(ref)
        return refs


def _common(reader: _Reader, kind: str) -> dict[str, Any]:
    seed = (
        reader.integer("seed", 0, 0, 2**31 - 1)
        if reader.raw.get("seed") is not None
        else secrets.randbelow(2**31)
    )
    labels = reader.labels("variants", DEFAULT_VARIANTS[GenerationKind(kind)])
    return {
        "seed": seed,
        "variants": labels,
        "fail_items": reader.item_refs("fail_items", labels),
        "fail_attempts": reader.integer("fail_attempts", 1, 1, 10),
        "transient_fail_items": reader.item_refs("transient_fail_items", labels),
        "fail_rate": reader.number("fail_rate", 0.0, 0.0, 1.0),
        "delay_ms": reader.integer("delay_ms", 0, 0, 60_000),
    }


def _source_url(reader: _Reader) -> str:
    url = reader.text("source_url", required=False, max_chars=2000)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            reader.error("source_url", "Must be an http(s) URL.")
    return url


def _video_ad(reader: _Reader, *, has_upload: bool) -> dict[str, Any]:
    source_url = _source_url(reader)
    prompt = reader.text(
        "prompt", required=not (source_url or has_upload), max_chars=MAX_PROMPT_CHARS
    )
    if source_url and has_upload:
        reader.error("source_url", "Give a source URL or upload a file, not both.")
    return {
        "prompt": prompt,
        "source_url": source_url,
        "scenes_per_variant": reader.integer("scenes_per_variant", 4, 1, 12),
        "scene_seconds": reader.number("scene_seconds", 3.0, 1.0, 10.0),
        "width": reader.even_size("width", 640, 160, 1920),
        "height": reader.even_size("height", 360, 90, 1080),
        "fps": reader.integer("fps", 24, 12, 30),
    }


def _speech(reader: _Reader) -> dict[str, Any]:
    text = reader.text("text", required=True, max_chars=MAX_SPEECH_CHARS)
    if text and len(split_speech_sections(text)) > MAX_SPEECH_TRACKS:
        reader.error("text", f"Splits into more than {MAX_SPEECH_TRACKS} tracks; shorten it.")
    return {"text": text, "words_per_minute": reader.integer("words_per_minute", 160, 80, 320)}


def _image(reader: _Reader) -> dict[str, Any]:
    return {
        "prompt": reader.text("prompt", required=True, max_chars=MAX_PROMPT_CHARS),
        "images_per_variant": reader.integer("images_per_variant", 1, 1, 8),
        "width": reader.even_size("width", 1024, 64, 2048),
        "height": reader.even_size("height", 576, 64, 2048),
    }


def normalise_input(kind: str, raw: dict[str, Any], *, has_upload: bool = False) -> dict[str, Any]:
    """The complete, validated parameter snapshot for `kind`; raises InputError naming
    every bad field."""
    if kind not in GenerationKind.values:
        raise InputError({"kind": [f"Must be one of {', '.join(GenerationKind.values)}."]})
    if not isinstance(raw, dict):
        raise InputError({"input": ["Must be an object."]})
    reader = _Reader(raw)
    snapshot = _common(reader, kind)
    if kind == GenerationKind.VIDEO_AD:
        snapshot.update(_video_ad(reader, has_upload=has_upload))
    elif kind == GenerationKind.SPEECH:
        snapshot.update(_speech(reader))
    else:
        snapshot.update(_image(reader))
    if reader.errors:
        raise InputError(reader.errors)
    return snapshot


def items_per_variant(kind: str, snapshot: dict[str, Any]) -> list[str]:
    """The prompt of each item every variant gets (video prompts are written later, by the
    prompts stage, so they start empty)."""
    if kind == GenerationKind.VIDEO_AD:
        return [""] * int(snapshot["scenes_per_variant"])
    if kind == GenerationKind.SPEECH:
        return split_speech_sections(str(snapshot["text"]))
    return [str(snapshot["prompt"])] * int(snapshot["images_per_variant"])
