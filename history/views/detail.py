"""The generation page, its live region and the side-by-side comparison of two generations.

A page loads a generation with `owned_generation` (404 for anyone else's id), then with
`selectors.generation_detail` (metadata, variants, items and regenerations in four
queries); media URLs are short-lived links from `object_url`, made per request.
"""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from generations import selectors
from generations.kinds import kind_spec
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.states import ACTIVE_GENERATION_STATUSES, ItemStatus, can_cancel, can_retry
from history.views.access import owned_generation, page_user
from storage.services import StorageUnavailable, object_url

COMPARE_CHOICES = 50
STAGES = [
    ("analysis", "Analysis"),
    ("transformation", "Transformation"),
    ("prompts", "Prompts"),
    ("evaluation", "Evaluation"),
]


@dataclass(frozen=True)
class ItemCard:
    item: Item
    asset_url: str
    thumbnail_url: str


@dataclass(frozen=True)
class VariantSection:
    variant: Variant
    cards: list[ItemCard]


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


@dataclass(frozen=True)
class GenerationPage:
    """Everything the live region and the comparison show of one generation."""

    generation: Generation
    variants: list[VariantSection]
    item_name: str
    # How an item is shown: "video", "audio" or "image" (`KindSpec.player`).
    player: str
    live: bool
    elapsed: float | None
    can_cancel: bool
    can_retry: bool
    can_download: bool


@dataclass(frozen=True)
class ParameterRow:
    name: str
    a: str
    b: str
    differs: bool


@login_required
@require_GET
def generation_detail(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    user = page_user(request)
    page = _generation_page(_load(request, user, generation_id))
    parent, regenerations = _lineage(user, page.generation)
    context = {
        "page": page,
        "generation": page.generation,
        "stages": _stages(page.generation),
        "parent": parent,
        "regenerations": regenerations,
    }
    return render(request, "history/detail.html", context)


@login_required
@require_GET
def live(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    """The live region alone, for htmx to swap in every 2 s; without its trigger once the
    generation has ended, which stops the polling. The response that sees the end also
    carries the stages section out of band (the evaluation is written last)."""
    page = _generation_page(_load(request, page_user(request), generation_id))
    context: dict[str, Any] = {"page": page, "generation": page.generation}
    if not page.live and getattr(request, "htmx", False):
        context["oob_stages"] = _stages(page.generation)
    return render(request, "history/_live.html", context)


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Two generations side by side with the parameters that differ; a form to pick them
    while either is missing. An id that is malformed or not the user's answers 404."""
    user = page_user(request)
    raw = {side: request.GET.get(side, "").strip() for side in ("a", "b")}
    chosen = {side: _load(request, user, _uuid(value)) for side, value in raw.items() if value}
    same = len(chosen) == 2 and chosen["a"].id == chosen["b"].id
    if len(chosen) < 2 or same:
        choices = (
            selectors.generation_scope(user)
            .order_by("-created_at")
            .only("id", "title", "kind", "created_at")[:COMPARE_CHOICES]
        )
        selected = {side: str(generation.id) for side, generation in chosen.items()}
        context = {"choices": choices, "selected": selected, "same": same}
        return render(request, "history/compare_pick.html", context)
    a, b = _generation_page(chosen["a"]), _generation_page(chosen["b"])
    rows = _parameter_rows(a.generation, b.generation)
    context = {
        "sides": [("A", a), ("B", b)],
        "rows": rows,
        "differences": sum(row.differs for row in rows),
    }
    return render(request, "history/compare.html", context)


def _load(request: HttpRequest, user: User, generation_id: UUID) -> Generation:
    owned = owned_generation(request, generation_id)
    try:
        return selectors.generation_detail(user=user, generation_id=owned.id)
    except Generation.DoesNotExist:  # deleted since the line above
        raise Http404("No such generation.") from None


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise Http404("No such generation.") from None


def _generation_page(generation: Generation) -> GenerationPage:
    spec = kind_spec(generation.kind)
    live = generation.status in ACTIVE_GENERATION_STATUSES
    if live:
        elapsed: float | None = generation.elapsed_seconds(timezone.now())
    else:
        elapsed = generation.generation_time_seconds
    variants = [
        VariantSection(variant=variant, cards=[_card(item) for item in variant.items.all()])
        for variant in generation.variants.all()
    ]
    return GenerationPage(
        generation=generation,
        variants=variants,
        item_name=spec.item_noun.capitalize(),
        player=spec.player,
        live=live,
        elapsed=elapsed,
        can_cancel=can_cancel(generation.status),
        can_retry=can_retry(generation.status),
        can_download=generation.completed_items > 0,
    )


def _card(item: Item) -> ItemCard:
    completed = item.status == ItemStatus.COMPLETED
    return ItemCard(
        item=item,
        asset_url=_url(item.asset_key) if completed else "",
        thumbnail_url=_url(item.thumbnail_key),
    )


def _url(key: str) -> str:
    """A short-lived URL of `key`, or "" when there is no key or storage cannot sign one
    (the card then says the file is unavailable rather than failing the page)."""
    if not key:
        return ""
    try:
        return object_url(key)
    except StorageUnavailable:
        return ""


def _lineage(user: User, generation: Generation) -> tuple[Generation | None, list[Generation]]:
    """The parent and the regenerations the user can still see, in at most one query."""
    child_ids = [child.id for child in generation.regenerations.all()]
    if generation.parent_id is None and not child_ids:
        return None, []
    ids = [*child_ids, *([generation.parent_id] if generation.parent_id else [])]
    found = {
        related.id: related
        for related in selectors.generation_scope(user)
        .filter(id__in=ids)
        .only("id", "title", "kind", "status", "created_at")
    }
    parent = found.get(generation.parent_id) if generation.parent_id else None
    return parent, [found[child_id] for child_id in child_ids if child_id in found]


def _stages(generation: Generation) -> list[Stage]:
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
    return [url for url in (_url(str(key)) for key in keys) if url]


def _parameter_rows(a: Generation, b: Generation) -> list[ParameterRow]:
    """The kind and every key of either input snapshot, in order, marking those whose
    values differ (a key only one side has differs)."""
    left = {"kind": a.kind, **a.input}
    right = {"kind": b.kind, **b.input}
    names = ["kind", *sorted((left.keys() | right.keys()) - {"kind"})]
    missing = object()
    rows = []
    for name in names:
        value_a, value_b = left.get(name, missing), right.get(name, missing)
        rows.append(
            ParameterRow(
                name=name,
                a="—" if value_a is missing else _shown(value_a),
                b="—" if value_b is missing else _shown(value_b),
                differs=value_a is missing or value_b is missing or value_a != value_b,
            )
        )
    return rows


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
