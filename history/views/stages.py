"""The stages' metadata as the generation page shows it: a summary line per stage over
its JSON, the prompts by variant and the source's keyframes; and short-lived media URLs."""

import json
from dataclasses import dataclass
from typing import Any

from generations.models import Generation, GenerationMetadata
from storage.services import StorageUnavailable, object_url

STAGES = [
    ("analysis", "Analysis"),
    ("transformation", "Transformation"),
    ("prompts", "Prompts"),
    ("evaluation", "Evaluation"),
]


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    summary: str
    pretty: str
    # Prompts only: each variant's prompts, in order.
    prompt_lists: list[tuple[str, list[str]]]
    # Analysis only: URLs of the source video's keyframes.
    keyframe_urls: list[str]


def media_url(key: str) -> str:
    """A short-lived URL of `key`, or "" when there is no key or storage cannot sign one
    (the card then says the file is unavailable rather than failing the page)."""
    if not key:
        return ""
    try:
        return object_url(key)
    except StorageUnavailable:
        return ""


def stages_of(generation: Generation) -> list[Stage]:
    try:
        metadata: GenerationMetadata | None = generation.metadata
    except GenerationMetadata.DoesNotExist:
        metadata = None
    stages = [
        Stage(
            name="parameters",
            title="Parameters",
            summary=_parameters_summary(generation.input),
            pretty=_pretty(generation.input),
            prompt_lists=[],
            keyframe_urls=[],
        )
    ]
    for name, title in STAGES:
        data = getattr(metadata, name, None) if metadata else None
        data = data if isinstance(data, dict) else {}
        stages.append(
            Stage(
                name=name,
                title=title,
                summary=_stage_summary(name, data),
                pretty=_pretty(data) if data else "",
                prompt_lists=_prompt_lists(data) if name == "prompts" else [],
                keyframe_urls=_keyframe_urls(data) if name == "analysis" else [],
            )
        )
    return stages


def _pretty(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _stage_summary(name: str, data: dict[str, Any]) -> str:
    """One line saying what a stage found; the JSON below it has the rest."""
    if not data:
        return "Not recorded yet"
    try:
        if name == "analysis":
            return _analysis_summary(data)
        if name == "transformation":
            variants = data.get("variants", {})
            return "; ".join(
                f"{label}: {style.get('tone', '?')}, {style.get('pacing', '?')} pacing"
                for label, style in variants.items()
            )
        if name == "prompts":
            lists = _prompt_lists(data)
            count = sum(len(prompts) for _, prompts in lists)
            return f"{_count(count, 'prompt')} across {_count(len(lists), 'variant')}"
        if name == "evaluation":
            return _evaluation_summary(data)
    except (AttributeError, TypeError, ValueError):
        pass
    return f"{_count(len(data), 'field')} recorded"


def _analysis_summary(data: dict[str, Any]) -> str:
    text = data.get("text", {})
    words, sentences = text.get("words", 0), text.get("sentences", 0)
    parts = [f"{_count(words, 'word')}, {_count(sentences, 'sentence')}"]
    if text.get("key_terms"):
        parts.append("key terms: " + ", ".join(str(term) for term in text["key_terms"][:4]))
    source = data.get("source")
    if isinstance(source, dict):
        seconds = float(source.get("duration_seconds") or 0)
        parts.append(f"source {seconds:.1f} s, {source.get('width')}x{source.get('height')}")
    return "; ".join(parts)


def _evaluation_summary(data: dict[str, Any]) -> str:
    rate = float(data.get("success_rate", 0)) * 100
    parts = [f"{rate:.0f}% of items succeeded"]
    if data.get("durations_on_target") is True:
        parts.append("durations on target")
    elif data.get("off_target_items"):
        parts.append(f"{len(data['off_target_items'])} off target")
    codes = data.get("failure_codes") or {}
    if codes:
        parts.append("failures: " + ", ".join(f"{code} ({n})" for code, n in codes.items()))
    return "; ".join(parts)


def _parameters_summary(snapshot: dict[str, Any]) -> str:
    parts = [f"{key} {snapshot[key]}" for key in ("model", "seed") if key in snapshot]
    variants = snapshot.get("variants")
    if isinstance(variants, list):
        parts.append(_count(len(variants), "variant"))
    return ", ".join(parts) or "None recorded"


def _count(number: object, noun: str) -> str:
    """`3 words`, `1 word`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _prompt_lists(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [
        (str(label), [str(prompt) for prompt in prompts])
        for label, prompts in data.items()
        if isinstance(prompts, list)
    ]


def _keyframe_urls(data: dict[str, Any]) -> list[str]:
    source = data.get("source")
    keys = source.get("keyframes", []) if isinstance(source, dict) else []
    return [url for url in (media_url(str(key)) for key in keys) if url]
