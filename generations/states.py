"""Status rules for generations, variants and items: the one place that knows them.

Services ask `ensure_transition` before changing a status and `rollup_status` to decide
how a generation or variant ends once its last item has ended.
"""

from django.db import models


class GenerationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    PARTIAL_SUCCESS = "partial_success", "Partial success"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Variants share the generation's lifecycle.
VariantStatus = GenerationStatus

FINAL_GENERATION_STATUSES = frozenset(
    {
        GenerationStatus.COMPLETED,
        GenerationStatus.PARTIAL_SUCCESS,
        GenerationStatus.FAILED,
        GenerationStatus.CANCELLED,
    }
)
ACTIVE_GENERATION_STATUSES = frozenset({GenerationStatus.PENDING, GenerationStatus.PROCESSING})
FINAL_ITEM_STATUSES = frozenset({ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED})

GENERATION_TRANSITIONS: dict[str, frozenset[str]] = {
    GenerationStatus.PENDING: frozenset(
        {GenerationStatus.PROCESSING, GenerationStatus.FAILED, GenerationStatus.CANCELLED}
    ),
    GenerationStatus.PROCESSING: frozenset(
        {
            GenerationStatus.COMPLETED,
            GenerationStatus.PARTIAL_SUCCESS,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELLED,
        }
    ),
    # Retrying the items that did not complete reopens a finished generation.
    GenerationStatus.PARTIAL_SUCCESS: frozenset({GenerationStatus.PROCESSING}),
    GenerationStatus.FAILED: frozenset({GenerationStatus.PROCESSING}),
    GenerationStatus.CANCELLED: frozenset({GenerationStatus.PROCESSING}),
    # A completed generation is never reopened; regenerating makes a new one.
    GenerationStatus.COMPLETED: frozenset(),
}

ITEM_TRANSITIONS: dict[str, frozenset[str]] = {
    ItemStatus.QUEUED: frozenset({ItemStatus.PROCESSING, ItemStatus.FAILED, ItemStatus.CANCELLED}),
    # Back to queued: a transient error being retried, or a lost worker's lease expiring.
    ItemStatus.PROCESSING: frozenset(
        {ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED, ItemStatus.QUEUED}
    ),
    ItemStatus.FAILED: frozenset({ItemStatus.QUEUED}),
    ItemStatus.CANCELLED: frozenset({ItemStatus.QUEUED}),
    ItemStatus.COMPLETED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"A {kind} cannot go from {current} to {target}.")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    return target in GENERATION_TRANSITIONS[current]


def can_transition_item(current: str, target: str) -> bool:
    return target in ITEM_TRANSITIONS[current]


def ensure_transition(current: str, target: str) -> None:
    """Raise InvalidTransition unless a generation or variant may move to `target`."""
    if not can_transition(current, target):
        raise InvalidTransition("generation", current, target)


def ensure_item_transition(current: str, target: str) -> None:
    if not can_transition_item(current, target):
        raise InvalidTransition("item", current, target)


def rollup_status(
    *, total: int, completed: int, failed: int, cancelled: int, cancel_requested: bool = False
) -> GenerationStatus | None:
    """The final status once every item has ended, or None while some are still open.

    A cancel wins; otherwise all completed is completed, some completed is
    partial_success, and none completed is failed.
    """
    if min(total, completed, failed, cancelled) < 0 or completed + failed + cancelled > total:
        raise ValueError(
            f"Inconsistent counters: total={total} completed={completed} "
            f"failed={failed} cancelled={cancelled}"
        )
    if completed + failed + cancelled < total:
        return None
    if cancel_requested or cancelled:
        return GenerationStatus.CANCELLED
    if completed == total:
        return GenerationStatus.COMPLETED
    if completed:
        return GenerationStatus.PARTIAL_SUCCESS
    return GenerationStatus.FAILED
