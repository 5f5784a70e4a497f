"""The generation page, its live region and the side-by-side comparison of two generations.

A page loads a generation with `owned_generation` (404 for anyone else's id), then with
`selectors.generation_detail` (metadata, variants, items with their attempt logs and
regenerations in five queries); media URLs are short-lived links from `object_url`, made
per request.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from generations import selectors
from generations.errors import RETRY_FUTILE_CODES
from generations.kinds import kind_spec
from generations.models import Attempt, Event, Generation, Item, Variant
from generations.states import (
    LIVE_GENERATION_STATUSES,
    Actor,
    EventType,
    GenerationStatus,
    ItemStatus,
    can_cancel,
    can_retry,
)
from history.views.access import owned_generation, page_user
from history.views.stages import media_url, stages_of

COMPARE_CHOICES = 50


@dataclass(frozen=True)
class AttemptRow:
    attempt: Attempt
    # How long it ran; None while it runs.
    seconds: float | None


@dataclass(frozen=True)
class ItemCard:
    item: Item
    asset_url: str
    thumbnail_url: str
    # The item's attempt log, first attempt first.
    attempts: list[AttemptRow]

    @property
    def history_version(self) -> str:
        """Changes when the log shown changes (an attempt starts or ends) and only then:
        an attempt that has ended is never written again. Part of the log's element id,
        so that the live region's swaps keep an open log open until there is news."""
        if not self.attempts:
            return "0"
        return f"{len(self.attempts)}-{self.attempts[-1].attempt.outcome or 'running'}"


@dataclass(frozen=True)
class VariantSection:
    variant: Variant
    cards: list[ItemCard]


@dataclass(frozen=True)
class TimelineStep:
    """One of the generation's own events, as the timeline shows it."""

    label: str
    at: datetime
    # "you" or "staff" when a person caused it; empty for Genvault itself.
    by: str


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
    timeline: list[TimelineStep]
    # The items' events counted, e.g. "16 started, 15 completed, 1 failed".
    item_activity: str
    # "Resume" on a cancelled generation, "Retry failed items" otherwise.
    retry_label: str
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
        "stages": stages_of(page.generation),
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
        context["oob_stages"] = stages_of(page.generation)
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
    live = generation.status in LIVE_GENERATION_STATUSES
    if live:
        elapsed: float | None = generation.elapsed_seconds(timezone.now())
    else:
        elapsed = generation.generation_time_seconds
    variants = [
        VariantSection(variant=variant, cards=[_card(item) for item in variant.items.all()])
        for variant in generation.variants.all()
    ]
    events, item_counts = selectors.event_timeline(generation.id)
    timeline = [_step(event) for event in events] or _timestamps(generation)
    return GenerationPage(
        generation=generation,
        variants=variants,
        item_name=spec.item_noun.capitalize(),
        player=spec.player,
        live=live,
        elapsed=elapsed,
        timeline=timeline,
        item_activity=_item_activity(item_counts),
        retry_label="Resume"
        if generation.status == GenerationStatus.CANCELLED
        else "Retry failed items",
        can_cancel=can_cancel(generation.status),
        can_retry=can_retry(generation.status) and _has_retryable_items(generation),
        can_download=generation.completed_items > 0,
    )


def _step(event: Event) -> TimelineStep:
    by = {Actor.USER: "you", Actor.STAFF: "staff"}.get(Actor(event.actor), "")
    return TimelineStep(label=EventType(event.type).label, at=event.created_at, by=by)


def _timestamps(generation: Generation) -> list[TimelineStep]:
    """The timeline of a generation recorded before it had an event log."""
    steps = [TimelineStep("Created", generation.created_at, "")]
    if generation.started_at:
        steps.append(TimelineStep("Started", generation.started_at, ""))
    if generation.completed_at:
        steps.append(TimelineStep(generation.get_status_display(), generation.completed_at, ""))
    return steps


_ITEM_ACTIVITY = [
    (EventType.ITEM_STARTED, "started"),
    (EventType.ITEM_COMPLETED, "completed"),
    (EventType.ITEM_FAILED, "failed"),
    (EventType.ITEM_RETRIED, "queued again"),
    (EventType.ITEM_CANCELLED, "stopped by the cancel"),
]


def _item_activity(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[kind]} {words}" for kind, words in _ITEM_ACTIVITY if kind in counts)


def _has_retryable_items(generation: Generation) -> bool:
    """Whether a retry would run anything: a cancelled item, or a failed one whose failure
    running it again may fix (from the prefetched items)."""
    return any(
        item.status == ItemStatus.CANCELLED
        or (item.status == ItemStatus.FAILED and item.error_code not in RETRY_FUTILE_CODES)
        for variant in generation.variants.all()
        for item in variant.items.all()
    )


def _card(item: Item) -> ItemCard:
    completed = item.status == ItemStatus.COMPLETED
    return ItemCard(
        item=item,
        asset_url=media_url(item.asset_key) if completed else "",
        thumbnail_url=media_url(item.thumbnail_key),
        attempts=[_attempt_row(attempt) for attempt in item.attempt_log.all()],
    )


def _attempt_row(attempt: Attempt) -> AttemptRow:
    if attempt.ended_at is None:
        return AttemptRow(attempt=attempt, seconds=None)
    return AttemptRow(
        attempt=attempt, seconds=(attempt.ended_at - attempt.started_at).total_seconds()
    )


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
