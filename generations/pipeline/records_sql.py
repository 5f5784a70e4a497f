"""The SQL that records an item's change in the attempt log and the event log, in the same
statement as the change on PostgreSQL (fragments of WITH), or step by step elsewhere."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from generations.errors import ErrorCode
from generations.events import event_record
from generations.models import Attempt, Item
from generations.pipeline.sql import SQL, datetime_param, quoted_column
from generations.states import AttemptOutcome

# Opens the claimed item's next attempt; `{source}` is the CTE of the claimed item.
ATTEMPT_OPEN = """
    INSERT INTO "generations_attempt" ("generation_id", "item_id", "number", "reason",
        "queued_at", "started_at", "ended_at", "outcome", "error_code", "error_message",
        "retryable", "provider_job_id", "cost", "worker")
    SELECT "generation_id", "id", "attempts", "queue_reason", "queued_at", %s, NULL, '',
        '', '', NULL, '', 0, %s FROM {source}
"""

# Closes the open attempt of the item in CTE `{source}`: its attempt number `{number}`.
_ATTEMPT_CLOSE = """
    UPDATE "generations_attempt" SET {assignments} FROM {source}
    WHERE "generations_attempt"."item_id" = {source}."id"
        AND "generations_attempt"."number" = {source}.{number}
        AND "generations_attempt"."ended_at" IS NULL
"""

_LOST_ON_RECLAIM = "The worker running this attempt stopped before it ended."

# An item event, appended to its generation's log: `{rows}` is a CTE with the item's
# "id", "variant_id", "number" and "attempts", `{numbered}` one with its generation's
# "generation_id", "owner_id" and new "last_event_sequence"; `{extra}` adds to the payload.
ITEM_EVENT_INSERT = """
    INSERT INTO "generations_event" ("generation_id", "owner_id", "sequence", "type",
        "actor", "actor_user_id", "payload", "created_at")
    SELECT {numbered}."generation_id", {numbered}."owner_id", {numbered}."last_event_sequence",
        %s, 'system', NULL,
        jsonb_build_object('item', {rows}."id", 'variant', {rows}."variant_id",
            'number', {rows}."number", 'attempt', {rows}."attempts") || {extra}, %s
    FROM {numbered}, {rows}
"""
# Takes the next sequence number of the generation of the items in CTE `{rows}`.
NEXT_SEQUENCE = """
    UPDATE "generations_generation" SET "last_event_sequence" =
        "generations_generation"."last_event_sequence" + 1
    FROM {rows} WHERE "generations_generation"."id" = {rows}."generation_id"
    RETURNING "generations_generation"."id" AS "generation_id",
        "generations_generation"."owner_id", "generations_generation"."last_event_sequence"
"""


@dataclass(frozen=True)
class ItemEvent:
    """The event an item's change appends to its generation's log."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)

    def record(self, item_id: UUID, now: datetime) -> None:
        """Append it step by step (where the one-statement SQL does not run)."""
        item = Item.objects.filter(id=item_id).values(
            "generation_id", "variant_id", "number", "attempts"
        )[0]
        payload = {
            "item": str(item_id),
            "variant": str(item["variant_id"]),
            "number": item["number"],
            "attempt": item["attempts"],
            **self.payload,
        }
        event_record(item["generation_id"], self.type, payload=payload, now=now)

    def params(self, now: datetime) -> list[Any]:
        return [self.type, json.dumps(self.payload, cls=DjangoJSONEncoder), datetime_param(now)]


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended, for its row in the attempt log."""

    outcome: str
    error_code: str = ""
    error_message: str = ""
    retryable: bool | None = None
    provider_job_id: str = ""
    cost: Decimal = Decimal(0)

    def values(self, now: datetime) -> dict[str, Any]:
        return {
            "ended_at": now,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "retryable": self.retryable,
            "provider_job_id": self.provider_job_id,
            "cost": self.cost,
        }


LOST_ON_RECLAIM = AttemptEnd(
    outcome=AttemptOutcome.LOST,
    error_code=ErrorCode.WORKER_LOST,
    error_message=_LOST_ON_RECLAIM,
    retryable=True,
)


def attempt_close_sql(
    end: AttemptEnd, now: datetime, *, source: str, number: str = '"attempts"'
) -> SQL:
    assignments, params = [], []
    for name, value in end.values(now).items():
        column, field = quoted_column(Attempt, name)
        assignments.append(f"{column} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = _ATTEMPT_CLOSE.format(assignments=", ".join(assignments), source=source, number=number)
    return sql, params


def close_in_steps(where: SQL, end: AttemptEnd, now: datetime) -> None:
    """Close the open attempt of the item `where` names by its id (its first parameter)."""
    item_id = where[1][0]
    number = Item.objects.filter(id=item_id).values_list("attempts", flat=True).first()
    if number is None:
        return
    Attempt.objects.filter(item_id=item_id, number=number, ended_at__isnull=True).update(
        **end.values(now)
    )
