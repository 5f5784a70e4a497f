import itertools

import pytest

from generations.states import (
    GenerationStatus,
    GenerationTransition,
    ItemStatus,
    ItemTransition,
    can_cancel,
    can_retry,
    rollup_status,
    sources_of,
)

G = GenerationStatus
S = ItemStatus

ALLOWED_GENERATION = {
    (G.PENDING, G.PROCESSING),
    (G.PENDING, G.FAILED),
    (G.PENDING, G.CANCELLED),
    (G.PENDING, G.CANCELLING),
    (G.PROCESSING, G.CANCELLING),
    (G.CANCELLING, G.CANCELLED),
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

GENERATION_TRANSITIONS = {
    "START": ({G.PENDING}, {G.PROCESSING}),
    "REQUEST_CANCEL": ({G.PENDING, G.PROCESSING}, {G.CANCELLING}),
    "CANCEL": ({G.PENDING, G.PROCESSING}, {G.CANCELLED}),
    "END": ({G.PROCESSING}, {G.COMPLETED, G.PARTIAL_SUCCESS, G.FAILED, G.CANCELLED}),
    "SETTLE": ({G.CANCELLING}, {G.CANCELLED}),
    "REFUSE": ({G.PENDING}, {G.FAILED}),
    "RETRY": ({G.PARTIAL_SUCCESS, G.FAILED, G.CANCELLED}, {G.PROCESSING}),
}

ITEM_TRANSITIONS = {
    "CLAIM": ({S.QUEUED}, {S.PROCESSING}),
    "COMPLETE": ({S.PROCESSING}, {S.COMPLETED}),
    "FAIL": ({S.PROCESSING}, {S.FAILED}),
    "REQUEUE": ({S.PROCESSING}, {S.QUEUED}),
    "STOP": ({S.PROCESSING}, {S.CANCELLED}),
    "CANCEL": ({S.QUEUED}, {S.CANCELLED}),
    "REFUSE": ({S.QUEUED}, {S.FAILED}),
    "RETRY": ({S.FAILED, S.CANCELLED}, {S.QUEUED}),
}


@pytest.mark.parametrize(
    ("transitions", "expected"),
    [(GenerationTransition, GENERATION_TRANSITIONS), (ItemTransition, ITEM_TRANSITIONS)],
)
def test_each_transition_has_exactly_its_sources_and_targets(transitions, expected):
    assert {
        transition.name: (set(transition.sources), set(transition.targets))
        for transition in transitions
    } == expected


@pytest.mark.parametrize(
    ("transitions", "statuses"), [(GenerationTransition, G), (ItemTransition, S)]
)
def test_transitions_name_only_known_statuses(transitions, statuses):
    named = set().union(*(t.sources | t.targets for t in transitions))

    assert named == set(statuses.values)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(G, G)))
def test_generation_transition_table(current, target):
    allowed = (current, target) in ALLOWED_GENERATION
    assert (current in sources_of(target)) is allowed
    assert (
        any(
            current in transition.sources and target in transition.targets
            for transition in GenerationTransition
        )
        is allowed
    )


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_item_transition_table(current, target):
    allowed = (current, target) in ALLOWED_ITEM
    assert (
        any(
            current in transition.sources and target in transition.targets
            for transition in ItemTransition
        )
        is allowed
    )


def test_completed_generation_is_never_reopened():
    assert not any(G.COMPLETED in sources_of(target) for target in G)


@pytest.mark.parametrize("status", list(G))
def test_only_pending_or_processing_can_be_cancelled(status):
    assert can_cancel(status) is (status in {G.PENDING, G.PROCESSING})


@pytest.mark.parametrize("status", list(G))
def test_only_an_ended_generation_short_of_completed_can_be_retried(status):
    assert can_retry(status) is (status in {G.PARTIAL_SUCCESS, G.FAILED, G.CANCELLED})


@pytest.mark.parametrize("transition", [*GenerationTransition, *ItemTransition])
def test_target_is_the_one_status_a_transition_leads_to(transition):
    if len(transition.targets) == 1:
        assert transition.target in transition.targets
    else:
        with pytest.raises(LookupError, match="one of several statuses"):
            _ = transition.target


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
