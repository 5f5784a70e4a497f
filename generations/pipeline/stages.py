"""The stages before rendering: analysis, transformation and prompts (the evaluation, after
rendering, is in `evaluation`).

Each stage returns the JSON saved to the generation's metadata. They are deterministic for
the same input, so a stage repeated after a redelivery writes the same result again.
"""

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from generations.errors import ErrorCode, GenerationError
from generations.kinds import kind_spec
from generations.media import previews
from generations.media.probe import MediaError, probe
from generations.models import Generation, SourceType
from generations.prompting import PromptRequest
from generations.source_fetch import SourceRefused, fetch_source
from storage.keys import source_key, source_keyframe_key
from storage.services import StorageUnavailable, object_open, object_save

KEYFRAME_COUNT = 3
# Known variant labels map to an intensity; any other label sits in the middle.
INTENSITY = {"soft": 0.25, "medium": 0.5, "aggressive": 0.75, "ultra": 1.0}
# (highest intensity, tone, pacing), checked in order.
TONES = [
    (0.3, "gentle", "relaxed"),
    (0.6, "confident", "steady"),
    (0.85, "urgent", "brisk"),
    (1.0, "bold", "rapid-fire"),
]
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP_WORDS_TEXT = """a an and are as at be but by for from has have in into is it its of on or our
that the their this to was were will with you your"""
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


# Analysis -------------------------------------------------------------------------------


def analysis_of(generation: Generation, workdir: Path) -> dict[str, Any]:
    """What the request is about: its text, and for a video ad with a source, the source
    video's real facts and a few keyframes stored beside the generation."""
    text = generation.input.get("text") or generation.prompt
    result: dict[str, Any] = {"text": _text_analysis(str(text))}
    if kind_spec(generation.kind).accepts_source and generation.source_type != SourceType.NONE:
        result["source"] = _source_analysis(generation, workdir)
    return result


def _text_analysis(text: str) -> dict[str, Any]:
    words = _WORD.findall(text)
    terms = Counter(word.lower() for word in words if word.lower() not in _STOP_WORDS)
    return {
        "characters": len(text),
        "words": len(words),
        "sentences": max(len(re.findall(r"[.!?]+", text)), 1 if text.strip() else 0),
        "key_terms": [term for term, _ in terms.most_common(8)],
    }


def _source_analysis(generation: Generation, workdir: Path) -> dict[str, Any]:
    path, stored_key = _source_file(generation, workdir)
    try:
        info = probe(path)
        if info.width is None:
            raise MediaError("it has no video stream")
        keyframes = previews.keyframe_thumbnails(path, workdir / "keyframes", count=KEYFRAME_COUNT)
    except MediaError as exc:
        raise GenerationError(
            ErrorCode.INVALID_INPUT, f"The source is not a readable video: {exc}"
        ) from exc
    keyframe_keys = []
    for number, keyframe in enumerate(keyframes, start=1):
        key = source_keyframe_key(generation_id=generation.id, number=number)
        _save(key, keyframe)
        keyframe_keys.append(key)
    return {
        "url": generation.source_url,
        "type": generation.source_type,
        "content_type": info.content_type,
        "file_size": info.file_size,
        "checksum": info.checksum,
        "duration_seconds": info.duration_seconds,
        "width": info.width,
        "height": info.height,
        "frame_rate": info.frame_rate,
        "video_codec": info.video_codec,
        "audio_codec": info.audio_codec,
        "keyframes": keyframe_keys,
        "stored_key": stored_key,
    }


def _source_file(generation: Generation, workdir: Path) -> tuple[Path, str]:
    """The source video as a local file and the key of its stored copy: downloaded
    (guarded) and stored for a URL, copied out of storage for an upload."""
    target = workdir / "source"
    if generation.source_type == SourceType.URL:
        try:
            fetched = fetch_source(
                generation.source_url,
                target,
                max_bytes=settings.SOURCE_MAX_BYTES,
                timeout_seconds=settings.SOURCE_FETCH_TIMEOUT_SECONDS,
                allow_loopback=settings.SOURCE_FETCH_ALLOW_LOOPBACK,
            )
        except SourceRefused as exc:
            raise GenerationError(ErrorCode.INVALID_INPUT, str(exc)) from exc
        key = source_key(
            generation_id=generation.id, filename=Path(urlsplit(fetched.final_url).path).name
        )
        _save(key, fetched.path)
        return fetched.path, key
    key = str(generation.input.get("source_key", ""))
    try:
        with object_open(key) as stored, target.open("wb") as local:
            shutil.copyfileobj(stored, local, length=1024 * 1024)
    except StorageUnavailable as exc:
        raise GenerationError(ErrorCode.STORAGE_UNAVAILABLE, str(exc)) from exc
    return target, key


def _save(key: str, path: Path) -> None:
    try:
        object_save(key=key, content=path)
    except StorageUnavailable as exc:
        raise GenerationError(ErrorCode.STORAGE_UNAVAILABLE, str(exc)) from exc


# Transformation and prompts -----------------------------------------------------------


def transformation_of(generation: Generation) -> dict[str, Any]:
    """How each variant departs from the base request: its intensity, tone and pacing."""
    variants = {}
    for label in generation.input["variants"]:
        intensity = INTENSITY.get(label, 0.5)
        tone, pacing = next((t, p) for limit, t, p in TONES if intensity <= limit)
        variants[label] = {"intensity": intensity, "tone": tone, "pacing": pacing}
    return {"variants": variants}


def prompts_of(
    generation: Generation, analysis: dict[str, Any], transformation: dict[str, Any]
) -> dict[str, list[str]]:
    """The prompt of every item, by variant label, written as the generation's kind does."""
    spec = kind_spec(generation.kind)
    return spec.write_prompts(
        PromptRequest(
            snapshot=generation.input,
            prompt=generation.prompt,
            item_prompts=spec.item_prompts(generation.input),
            analysis=analysis,
            transformation=transformation,
        )
    )
