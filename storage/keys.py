"""Stable storage keys: the same item always lands on the same key, so a retried write
overwrites its own object and an object can be traced back to its row."""

import re
import uuid

_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")
_PREVIEW_SUFFIX = re.compile(r"^[a-z0-9]{1,16}\.[a-z0-9]{1,8}$")


def generation_prefix(generation_id: uuid.UUID | str) -> str:
    return f"generations/{uuid.UUID(str(generation_id))}/"


def _item_stem(
    *, generation_id: uuid.UUID | str, variant_label: str, number: int, stem: str
) -> str:
    if not _LABEL.match(variant_label):
        raise ValueError(f"Variant label {variant_label!r} cannot be used in a storage key")
    if not _LABEL.match(stem):
        raise ValueError(f"Stem {stem!r} cannot be used in a storage key")
    if number < 1:
        raise ValueError(f"Item numbers start at 1, got {number}")
    return f"{generation_prefix(generation_id)}{variant_label}/{stem}_{number}"


def asset_key(
    *, generation_id: uuid.UUID | str, variant_label: str, number: int, stem: str, extension: str
) -> str:
    """`generations/{id}/{label}/{stem}_{n}.{ext}`, e.g. `.../soft/scene_2.mp4`."""
    extension = extension.lower().lstrip(".")
    if not _EXTENSION.match(extension):
        raise ValueError(f"Unsupported file extension {extension!r}")
    item = _item_stem(
        generation_id=generation_id, variant_label=variant_label, number=number, stem=stem
    )
    return f"{item}.{extension}"


def preview_key(
    *, generation_id: uuid.UUID | str, variant_label: str, number: int, stem: str, suffix: str
) -> str:
    """`.../{stem}_{n}_{suffix}`, e.g. `.../soft/scene_2_thumb.jpg`."""
    if not _PREVIEW_SUFFIX.match(suffix):
        raise ValueError(f"Unsupported preview suffix {suffix!r}")
    item = _item_stem(
        generation_id=generation_id, variant_label=variant_label, number=number, stem=stem
    )
    return f"{item}_{suffix}"


def source_key(*, generation_id: uuid.UUID | str, filename: str) -> str:
    """Where an uploaded or fetched source file of a generation is kept."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    if not _EXTENSION.match(suffix):
        suffix = "bin"
    return f"{generation_prefix(generation_id)}source/original.{suffix}"


def is_valid_variant_label(label: str) -> bool:
    return bool(_LABEL.match(label))


def source_keyframe_key(*, generation_id: uuid.UUID | str, number: int) -> str:
    """A keyframe thumbnail taken from a generation's source video during analysis."""
    return f"{generation_prefix(generation_id)}source/keyframe_{number}.jpg"
