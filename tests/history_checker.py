"""The history checker: what must hold of a generation's record once its work has ended,
whatever faults happened on the way. Fault and end-to-end tests call it last.

- counters equal the item rows at every level, and each status is the roll-up of them;
- every attempt is closed, and the event log is numbered without gaps;
- every completed item's objects exist, and every object under the generation is named
  by a row (or is its source);
- nothing is left pending, processing, queued or cancelling.
"""

from decimal import Decimal

from generations.models import Attempt, Event, Generation, Item, Variant
from generations.states import (
    FINAL_GENERATION_STATUSES,
    GenerationStatus,
    ItemStatus,
    rollup_status,
)
from storage.keys import generation_prefix
from storage.services import object_exists, object_keys

UNENDED_ITEM_STATUSES = frozenset({ItemStatus.QUEUED, ItemStatus.PROCESSING})


def check_history(generation: Generation) -> list[str]:
    """Every violation found in the record of `generation`, as sentences; [] when none."""
    generation.refresh_from_db()
    problems: list[str] = []
    items = list(Item.objects.filter(generation=generation))
    problems += _counters(generation, items)
    problems += _statuses(generation, items)
    problems += _attempts(generation)
    problems += _events(generation)
    problems += _objects(generation, items)
    return problems


def assert_history_holds(generation: Generation) -> None:
    problems = check_history(generation)
    assert not problems, "\n".join(problems)


def _count(items: list[Item], status: str) -> int:
    return sum(item.status == status for item in items)


def _counters(generation: Generation, items: list[Item]) -> list[str]:
    problems = []
    rows = [(generation, items)] + [
        (variant, [item for item in items if item.variant_id == variant.id])
        for variant in Variant.objects.filter(generation=generation)
    ]
    for row, mine in rows:
        counted = (row.total_items, row.completed_items, row.failed_items, row.cancelled_items)
        truth = (
            len(mine),
            _count(mine, ItemStatus.COMPLETED),
            _count(mine, ItemStatus.FAILED),
            _count(mine, ItemStatus.CANCELLED),
        )
        if counted != truth:
            problems.append(f"{row!r}: counters {counted} but its items say {truth}")
    cost = sum((item.cost for item in items if item.status == ItemStatus.COMPLETED), Decimal(0))
    if generation.actual_cost != cost:
        problems.append(f"actual cost {generation.actual_cost} but its items cost {cost}")
    return problems


def _statuses(generation: Generation, items: list[Item]) -> list[str]:
    problems = []
    if generation.status not in FINAL_GENERATION_STATUSES:
        problems.append(f"the generation is still {generation.status}")
    unended = [item.id for item in items if item.status in UNENDED_ITEM_STATUSES]
    if unended:
        problems.append(f"{len(unended)} item(s) still queued or processing")
    cancelled = generation.status == GenerationStatus.CANCELLED
    for variant in Variant.objects.filter(generation=generation):
        expected = rollup_status(
            total=variant.total_items,
            completed=variant.completed_items,
            failed=variant.failed_items,
            cancelled=variant.cancelled_items,
            cancel_requested=cancelled,
        )
        if expected is not None and variant.status != expected:
            problems.append(f"variant {variant.label} is {variant.status}, not {expected}")
    expected = rollup_status(
        total=generation.total_items,
        completed=generation.completed_items,
        failed=generation.failed_items,
        cancelled=generation.cancelled_items,
        cancel_requested=cancelled,
    )
    if expected is not None and generation.status != expected:
        problems.append(f"the generation is {generation.status}, not {expected}")
    return problems


def _attempts(generation: Generation) -> list[str]:
    problems = []
    open_attempts = Attempt.objects.filter(generation=generation, ended_at__isnull=True).count()
    if open_attempts:
        problems.append(f"{open_attempts} attempt(s) never closed")
    for item in Item.objects.filter(generation=generation):
        numbers = list(
            Attempt.objects.filter(item=item).order_by("number").values_list("number", flat=True)
        )
        if numbers and numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            problems.append(f"item {item.id}: attempts {numbers} have gaps")
    return problems


def _events(generation: Generation) -> list[str]:
    sequences = list(
        Event.objects.filter(generation_id=generation.id)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    if sequences != list(range(1, len(sequences) + 1)):
        return [f"event sequence {sequences} has gaps"]
    if generation.last_event_sequence != len(sequences):
        return [f"last_event_sequence {generation.last_event_sequence} of {len(sequences)}"]
    return []


def _objects(generation: Generation, items: list[Item]) -> list[str]:
    problems = []
    named = set()
    for item in items:
        if item.status == ItemStatus.COMPLETED:
            for key in (item.asset_key, item.thumbnail_key):
                named.add(key)
                if not key or not object_exists(key):
                    problems.append(f"completed item {item.id} lacks its object {key!r}")
    source = f"{generation_prefix(generation.id)}source/"
    for key in object_keys(generation_prefix(generation.id)):
        if key not in named and not key.startswith(source):
            problems.append(f"object {key} is named by no row")
    return problems
