"""The record of what happened, which nothing overwrites: the attempt log (every
attempt at every item) and the event log (every change to a generation)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from generations.models.generation import Generation, Item
from generations.states import Actor, AttemptOutcome, EventType, QueueReason


class Attempt(models.Model):
    """One attempt at one item, from its claim to its end: why it started, where it ran,
    how it ended. Never overwritten by a later attempt, a retry or a regeneration; the
    item's own error fields say only how its latest attempt ended."""

    # Denormalised from the item so that a generation's attempts (and the failures of a
    # user's generations) need no join through items.
    generation = models.ForeignKey(
        Generation, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    # Indexed through attempt_number_unique, which starts with the item.
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="attempt_log", db_index=False
    )
    number = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=20, choices=QueueReason.choices)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    retryable = models.BooleanField(null=True, blank=True)
    provider_job_id = models.CharField(max_length=200, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    # The worker process that ran it: host and process id.
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["item", "number"]
        indexes = [
            # A generation's attempts (its page, its API, the history checker).
            models.Index(fields=["generation", "item", "number"], name="attempt_generation"),
            # Failures over time by code (the staff dashboard's last day), retried or not.
            models.Index(
                fields=["ended_at"],
                include=["error_code"],
                name="attempt_failure_ended",
                condition=Q(
                    outcome__in=[
                        AttemptOutcome.FAILED,
                        AttemptOutcome.RETRYING,
                        AttemptOutcome.LOST,
                    ]
                ),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["item", "number"], name="attempt_number_unique"),
            models.CheckConstraint(
                condition=Q(outcome__in=["", *AttemptOutcome.values]),
                name="attempt_outcome_valid",
            ),
            models.CheckConstraint(condition=Q(cost__gte=0), name="attempt_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of item {self.item_id}"


class Event(models.Model):
    """One thing that happened to a generation, appended in the same transaction as the
    change it records and never changed after.

    `sequence` numbers a generation's events 1, 2, 3... without gaps (taken from its
    `last_event_sequence` by a relative update). The log is also the outbox that
    deliveries read: `generations.events.events_after` hands out every committed event
    after a cursor, in commit order, none skipped or twice. The generation is named by
    id, without a foreign key, so that its log outlives its purge."""

    id = models.BigAutoField(primary_key=True)
    generation_id = models.UUIDField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    sequence = models.PositiveIntegerField()
    type = models.CharField(max_length=30, choices=EventType.choices)
    actor = models.CharField(max_length=10, choices=Actor.choices, default=Actor.SYSTEM)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    # PostgreSQL: the writing transaction's id (set by a trigger), which orders the
    # outbox by commit; null elsewhere, where one writer at a time commits in id order.
    transaction_id = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["generation_id", "sequence"]
        indexes = [
            # The outbox: events after a cursor, in commit order.
            models.Index(fields=["transaction_id", "id"], name="event_outbox"),
            # A user's recent events (activity, deliveries).
            models.Index(fields=["owner", "id"], name="event_owner"),
        ]
        constraints = [
            # Also serves a generation's log, in order.
            models.UniqueConstraint(
                fields=["generation_id", "sequence"], name="event_sequence_unique"
            ),
            models.CheckConstraint(condition=Q(type__in=EventType.values), name="event_type_valid"),
            models.CheckConstraint(condition=Q(actor__in=Actor.values), name="event_actor_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence} of {self.generation_id}"
