import itertools

import pytest

from generations.states import (
    GENERATION_TRANSITIONS,
    ITEM_TRANSITIONS,
    GenerationStatus,
    InvalidTransition,
    ItemStatus,
    can_transition,
    can_transition_item,
    ensure_item_transition,
    ensure_transition,
    rollup_status,
)

G = GenerationStatus
S = ItemStatus

ALLOWED_GENERATION = {
    (G.PENDING, G.PROCESSING),
    (G.PENDING, G.FAILED),
    (G.PENDING, G.CANCELLED),
    (G.PROCESSING, G.COMPLETED),
    (G.PROCESSING, G.PARTIAL_SUCCESS),
    (G.PROCESSING, G.FAILED),
    (G.PROCESSING, G.CANCELLED),
    (G.PARTIAL_SUCCESS, G.PROCESSING),
    (G.FAILED, G.PROCESSING),
    (G.CANCELLED, G.PROCESSING),
}

ALLOWED_ITEM = {
    (S.QUEUED, S.PROCESSING),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELLED),
    (S.PROCESSING, S.COMPLETED),
    (S.PROCESSING, S.FAILED),
    (S.PROCESSING, S.CANCELLED),
    (S.PROCESSING, S.QUEUED),
    (S.FAILED, S.QUEUED),
    (S.CANCELLED, S.QUEUED),
}


def test_every_status_has_a_transition_entry():
    assert set(GENERATION_TRANSITIONS) == set(G.values)
    assert set(ITEM_TRANSITIONS) == set(S.values)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(G, G)))
def test_generation_transition_table(current, target):
    allowed = (current, target) in ALLOWED_GENERATION
    assert can_transition(current, target) is allowed
    if allowed:
        ensure_transition(current, target)
    else:
        with pytest.raises(InvalidTransition, match=f"from {current.value} to {target.value}"):
            ensure_transition(current, target)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_item_transition_table(current, target):
    allowed = (current, target) in ALLOWED_ITEM
    assert can_transition_item(current, target) is allowed
    if allowed:
        ensure_item_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            ensure_item_transition(current, target)


def test_completed_generation_is_never_reopened():
    assert not GENERATION_TRANSITIONS[G.COMPLETED]


def _expected_rollup(total, completed, failed, cancelled, cancel_requested):
    if completed + failed + cancelled < total:
        return None
    if cancel_requested or cancelled:
        return G.CANCELLED
    if completed == total:
        return G.COMPLETED
    if completed:
        return G.PARTIAL_SUCCESS
    return G.FAILED


def _consistent_counters(limit):
    for total in range(limit + 1):
        for completed, failed, cancelled in itertools.product(range(total + 1), repeat=3):
            if completed + failed + cancelled <= total:
                yield total, completed, failed, cancelled


@pytest.mark.parametrize("cancel_requested", [False, True])
def test_rollup_for_every_counter_combination_up_to_five_items(cancel_requested):
    for total, completed, failed, cancelled in _consistent_counters(5):
        assert rollup_status(
            total=total,
            completed=completed,
            failed=failed,
            cancelled=cancelled,
            cancel_requested=cancel_requested,
        ) == _expected_rollup(total, completed, failed, cancelled, cancel_requested)


@pytest.mark.parametrize(
    ("counters", "expected"),
    [
        ({"total": 16, "completed": 16, "failed": 0, "cancelled": 0}, G.COMPLETED),
        ({"total": 16, "completed": 15, "failed": 1, "cancelled": 0}, G.PARTIAL_SUCCESS),
        ({"total": 16, "completed": 0, "failed": 16, "cancelled": 0}, G.FAILED),
        ({"total": 16, "completed": 10, "failed": 1, "cancelled": 5}, G.CANCELLED),
        ({"total": 16, "completed": 15, "failed": 0, "cancelled": 0}, None),
    ],
)
def test_rollup_examples(counters, expected):
    assert rollup_status(**counters) == expected


def test_cancel_wins_even_when_everything_completed():
    assert (
        rollup_status(total=4, completed=4, failed=0, cancelled=0, cancel_requested=True)
        == G.CANCELLED
    )


@pytest.mark.parametrize(
    "counters",
    [
        {"total": 2, "completed": 2, "failed": 1, "cancelled": 0},
        {"total": 2, "completed": -1, "failed": 0, "cancelled": 0},
        {"total": -1, "completed": 0, "failed": 0, "cancelled": 0},
    ],
)
def test_rollup_rejects_inconsistent_counters(counters):
    with pytest.raises(ValueError, match="Inconsistent counters"):
        rollup_status(**counters)
