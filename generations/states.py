"""Status rules for generations, variants and items: the one place that knows them.

Each status change the system makes is a named transition: the statuses it may start from
and the ones it leads to. A write that changes a status names its transition and guards
its update with the transition's `sources`, so a repeated task or a race changes nothing
twice; `can_cancel` and `can_retry` answer the pages and services from the same table.
`rollup_status` decides how a generation or variant ends once its last item has ended, and
`sources_of` which statuses may move to the status it decides.
"""

from collections.abc import Iterable
from enum import Enum
from functools import cache

from django.db import models


class GenerationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    PARTIAL_SUCCESS = "partial_success", "Partial success"
    FAILED = "failed", "Failed"
    # A cancel was asked for while items were running: they stop at their next
    # checkpoint, and the generation is cancelled once none runs.
    CANCELLING = "cancelling", "Cancelling"
    CANCELLED = "cancelled", "Cancelled"


class ItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class QueueReason(models.TextChoices):
    """Why an item is queued, and so why its next attempt starts."""

    FIRST_RUN = "first_run", "First run"
    AUTOMATIC_RETRY = "automatic_retry", "Automatic retry"
    USER_RETRY = "user_retry", "Retried by the user"
    RECOVERY = "recovery", "Recovered from a lost worker"
    RESUME = "resume", "Resumed after a cancel"


class AttemptOutcome(models.TextChoices):
    """How an attempt ended; blank while it runs."""

    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    RETRYING = "retrying", "Failed, retried"
    CANCELLED = "cancelled", "Cancelled"
    LOST = "lost", "Worker lost"


class EventType(models.TextChoices):
    """What an event in a generation's log records."""

    CREATED = "created", "Created"
    DISPATCHED = "dispatched", "Sent to the workers"
    STARTED = "started", "Started"
    ITEM_STARTED = "item_started", "Item started"
    ITEM_COMPLETED = "item_completed", "Item completed"
    ITEM_FAILED = "item_failed", "Item failed"
    ITEM_RETRIED = "item_retried", "Item queued again"
    ITEM_CANCELLED = "item_cancelled", "Item stopped by the cancel"
    CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"
    PARTIAL_SUCCESS = "partial_success", "Ended with some items failed"
    FAILED = "failed", "Failed"
    RETRIED = "retried", "Retried"
    REGENERATED = "regenerated", "Regenerated"
    DELETED = "deleted", "Moved to the trash"
    RESTORED = "restored", "Restored"
    PURGED = "purged", "Purged"


class Actor(models.TextChoices):
    """Who caused an event."""

    USER = "user", "Its owner"
    STAFF = "staff", "Staff"
    SYSTEM = "system", "Genvault"


# The events of one item (the rest are the generation's own).
ITEM_EVENTS = frozenset(
    {
        EventType.ITEM_STARTED,
        EventType.ITEM_COMPLETED,
        EventType.ITEM_FAILED,
        EventType.ITEM_RETRIED,
        EventType.ITEM_CANCELLED,
    }
)

# The event that records a generation ending in each final status.
ENDING_EVENTS = {
    "completed": EventType.COMPLETED,
    "partial_success": EventType.PARTIAL_SUCCESS,
    "failed": EventType.FAILED,
    "cancelled": EventType.CANCELLED,
}

# The outcomes of attempts that failed, whether or not a retry followed.
FAILURE_OUTCOMES = frozenset({AttemptOutcome.FAILED, AttemptOutcome.RETRYING, AttemptOutcome.LOST})

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
# Still moving: what pages and clients keep polling, and what counts against a user's
# limit of generations in flight.
LIVE_GENERATION_STATUSES = ACTIVE_GENERATION_STATUSES | {GenerationStatus.CANCELLING}
# A cancel was asked for: running items stop, and the roll-up ends in cancelled.
CANCEL_REQUESTED_STATUSES = frozenset({GenerationStatus.CANCELLING, GenerationStatus.CANCELLED})


class Transition(Enum):
    """A kind of status change: from any of `sources` to one of `targets`."""

    def __init__(self, sources: Iterable[str], targets: Iterable[str]) -> None:
        self.sources = frozenset(sources)
        self.targets = frozenset(targets)

    @property
    def target(self) -> str:
        """The status this transition leads to, when it leads to only one."""
        if len(self.targets) != 1:
            raise LookupError(f"{self.name} leads to one of several statuses")
        return next(iter(self.targets))


class GenerationTransition(Transition):
    """Every status change of a generation, and of a variant (same statuses, same rules)."""

    # The first prepare: stages begin; a variant once its items have their prompts.
    START = ({GenerationStatus.PENDING}, {GenerationStatus.PROCESSING})
    # A cancel while items run: they are told to stop, and the generation settles (END)
    # once none runs.
    REQUEST_CANCEL = (ACTIVE_GENERATION_STATUSES, {GenerationStatus.CANCELLING})
    # A cancel while no item runs: cancelled at once.
    CANCEL = (ACTIVE_GENERATION_STATUSES, {GenerationStatus.CANCELLED})
    # The last item has ended; `rollup_status` says which final status.
    END = ({GenerationStatus.PROCESSING}, FINAL_GENERATION_STATUSES)
    # The last running item of a cancelling generation has stopped.
    SETTLE = ({GenerationStatus.CANCELLING}, {GenerationStatus.CANCELLED})
    # A variant of a generation whose input cannot be rendered fails before it starts.
    REFUSE = ({GenerationStatus.PENDING}, {GenerationStatus.FAILED})
    # Retrying the items that did not complete reopens a finished generation; a completed
    # one is never reopened (regenerating makes a new one).
    RETRY = (
        {GenerationStatus.PARTIAL_SUCCESS, GenerationStatus.FAILED, GenerationStatus.CANCELLED},
        {GenerationStatus.PROCESSING},
    )


class ItemTransition(Transition):
    """Every status change of an item."""

    # A delivery takes it; the claim token says which.
    CLAIM = ({ItemStatus.QUEUED}, {ItemStatus.PROCESSING})
    COMPLETE = ({ItemStatus.PROCESSING}, {ItemStatus.COMPLETED})
    # An error that is not retried, or a worker lost once too often.
    FAIL = ({ItemStatus.PROCESSING}, {ItemStatus.FAILED})
    # A transient error being retried, or a lost worker's lease expiring.
    REQUEUE = ({ItemStatus.PROCESSING}, {ItemStatus.QUEUED})
    # A running item reached a checkpoint after its generation was cancelled.
    STOP = ({ItemStatus.PROCESSING}, {ItemStatus.CANCELLED})
    # Its generation was cancelled before a worker took it.
    CANCEL = ({ItemStatus.QUEUED}, {ItemStatus.CANCELLED})
    # Its generation's input cannot be rendered at all.
    REFUSE = ({ItemStatus.QUEUED}, {ItemStatus.FAILED})
    # Retrying a generation runs again what did not complete.
    RETRY = ({ItemStatus.FAILED, ItemStatus.CANCELLED}, {ItemStatus.QUEUED})


@cache
def sources_of(target: str) -> frozenset[str]:
    """The statuses from which a generation or variant may move to `target`."""
    sources: set[str] = set()
    for transition in GenerationTransition:
        if target in transition.targets:
            sources |= transition.sources
    return frozenset(sources)


def can_cancel(status: str) -> bool:
    return status in GenerationTransition.CANCEL.sources


def can_retry(status: str) -> bool:
    return status in GenerationTransition.RETRY.sources


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
