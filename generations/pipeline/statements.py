"""The SQL of the item lifecycle writes, written out rather than compiled by the ORM because
it runs for every item: the claim (opening the item's attempt), the item's UPDATE, closing
its attempt, the counter increments, and counting an ending in one statement on
PostgreSQL (UPDATEs inside WITH) or step by step elsewhere.

Counters move by relative updates (`column = column + n`), never read-modify-write, and
rows are locked in the order item, variant, generation, which keeps concurrent
transactions free of lock cycles.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Field, Model

from generations.errors import ErrorCode
from generations.events import event_record
from generations.models import Attempt, Generation, Item, Variant
from generations.states import AttemptOutcome, EventType, ItemTransition

# A statement or a fragment of one, and its parameters.
SQL = tuple[str, Sequence[Any]]
# (total, completed, failed, cancelled) of a variant or a generation.
Counters = tuple[int, int, int, int]


@dataclass(frozen=True)
class Counted:
    """A variant's and its generation's counters right after an ending was counted."""

    variant: Counters
    generation: Counters
    generation_status: str


# The claimed item's own columns, then what rendering needs from its variant and
# generation, read by the claiming UPDATE itself, then what its attempt records.
_CLAIM_RETURNING = """
    "id", "generation_id", "variant_id", "number", "prompt", "attempts",
    (SELECT "label" FROM "generations_variant"
     WHERE "generations_variant"."id" = "generations_item"."variant_id") AS "variant_label",
    (SELECT "kind" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id") AS "kind",
    (SELECT "provider" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id") AS "provider",
    (SELECT "provider_model" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id")
     AS "provider_model",
    (SELECT "input" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id") AS "input",
    (SELECT "status" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id")
     AS "generation_status",
    "queue_reason", "queued_at"
"""

# What an item's change returns for its attempt and its event.
_ITEM_COLUMNS = '"id", "generation_id", "variant_id", "number", "attempts"'

# Opens the claimed item's next attempt; `{source}` is the CTE of the claimed item.
_ATTEMPT_OPEN = """
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
_ITEM_EVENT_INSERT = """
    INSERT INTO "generations_event" ("generation_id", "owner_id", "sequence", "type",
        "actor", "actor_user_id", "payload", "created_at")
    SELECT {numbered}."generation_id", {numbered}."owner_id", {numbered}."last_event_sequence",
        %s, 'system', NULL,
        jsonb_build_object('item', {rows}."id", 'variant', {rows}."variant_id",
            'number', {rows}."number", 'attempt', {rows}."attempts") || {extra}, %s
    FROM {numbered}, {rows}
"""
# Takes the next sequence number of the generation of the items in CTE `{rows}`.
_NEXT_SEQUENCE = """
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
        return [self.type, json.dumps(self.payload, cls=DjangoJSONEncoder), _datetime(now)]


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


def claim(
    *, item_id: UUID, claim_token: str, now: datetime, max_attempts: int, worker: str
) -> Sequence[Any] | None:
    """Take an item the claim may start from, or take back one still held by this
    delivery (its worker died mid-item and the message was redelivered) while attempts
    remain; recovery fails it after that. The claim opens the item's next attempt (and,
    on a take-back, closes the one the dead worker left open). One statement on
    PostgreSQL. Returns the _CLAIM_RETURNING columns, or None when nothing was taken."""
    transition = ItemTransition.CLAIM
    claimable, claimable_params = _status_in(transition.sources)
    update = f"""
        UPDATE "generations_item" SET "status" = %s, "claim_token" = %s,
            "attempts" = "attempts" + 1, "started_at" = %s, "updated_at" = %s
        WHERE "id" = %s AND (
            {claimable} OR ("status" = %s AND "claim_token" = %s AND "attempts" < %s))
        RETURNING {_CLAIM_RETURNING}
    """  # noqa: S608 (only constants are interpolated)
    moment = _datetime(now)
    params = [transition.target, claim_token, moment, moment, _pk(Item, item_id)]
    params += [*claimable_params, transition.target, claim_token, max_attempts]
    if counts_in_one_statement():
        close = _attempt_close_sql(LOST_ON_RECLAIM, now, source="claimed", number='"attempts" - 1')
        opened = _ATTEMPT_OPEN.format(source="claimed")
        numbered = _NEXT_SEQUENCE.format(rows="claimed")
        logged = _ITEM_EVENT_INSERT.format(
            rows="claimed",
            numbered="numbered",
            extra="jsonb_build_object('reason', claimed.\"queue_reason\")",
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH claimed AS ({update}), lost AS ({close[0]}), opened AS ({opened}),
                numbered AS ({numbered}), logged AS ({logged})
                SELECT * FROM claimed""",  # noqa: S608 (constants and ORM-prepared SQL)
                [*params, *close[1], moment, worker, EventType.ITEM_STARTED, moment],
            )
            row: Sequence[Any] | None = cursor.fetchone()
        return row
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(update, params)
        row = cursor.fetchone()
        if row is None:
            return None
        Attempt.objects.filter(item_id=item_id, ended_at__isnull=True).update(
            **LOST_ON_RECLAIM.values(now)
        )
        Attempt.objects.create(
            generation_id=row[1],
            item_id=row[0],
            number=row[5],
            reason=row[12],
            queued_at=row[13],
            started_at=now,
            worker=worker,
        )
        ItemEvent(EventType.ITEM_STARTED, {"reason": row[12]}).record(item_id, now)
        return row


def update_and_close(values: dict[str, Any], where: SQL, end: AttemptEnd, event: ItemEvent) -> int:
    """Update the item (`where` names it by its id), close its current attempt as `end`
    says and append `event`, in one statement on PostgreSQL; returns how many items
    changed."""
    update = item_update(values, where)
    now = values["updated_at"]
    if counts_in_one_statement():
        close = _attempt_close_sql(end, now, source="changed")
        numbered = _NEXT_SEQUENCE.format(rows="changed")
        logged = _ITEM_EVENT_INSERT.format(rows="changed", numbered="numbered", extra="%s::jsonb")
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH changed AS ({update[0]} RETURNING {_ITEM_COLUMNS}),
                closed AS ({close[0]}), numbered AS ({numbered}), logged AS ({logged})
                SELECT count(*) FROM changed""",  # noqa: S608
                [*update[1], *close[1], *event.params(now)],
            )
            row = cursor.fetchone()
        return int(row[0]) if row else 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(*update)
        changed = int(cursor.rowcount)
        if changed:
            _close_in_steps(where, end, now)
            event.record(where[1][0], now)
        return changed


def _attempt_close_sql(
    end: AttemptEnd, now: datetime, *, source: str, number: str = '"attempts"'
) -> SQL:
    assignments, params = [], []
    for name, value in end.values(now).items():
        column, field = _column(Attempt, name)
        assignments.append(f"{column} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = _ATTEMPT_CLOSE.format(assignments=", ".join(assignments), source=source, number=number)
    return sql, params


def _close_in_steps(where: SQL, end: AttemptEnd, now: datetime) -> None:
    """Close the open attempt of the item `where` names by its id (its first parameter)."""
    item_id = where[1][0]
    number = Item.objects.filter(id=item_id).values_list("attempts", flat=True).first()
    if number is None:
        return
    Attempt.objects.filter(item_id=item_id, number=number, ended_at__isnull=True).update(
        **end.values(now)
    )


def held_by(item_id: UUID, claim_token: str, transition: ItemTransition) -> SQL:
    """WHERE the item may take `transition` and is still held by this delivery."""
    status, params = _status_in(transition.sources)
    return f'"id" = %s AND {status} AND "claim_token" = %s', [
        _pk(Item, item_id),
        *params,
        claim_token,
    ]


def lost_since(item_id: UUID, started_before: datetime, transition: ItemTransition) -> SQL:
    """WHERE the item may take `transition` and started before `started_before`."""
    status, params = _status_in(transition.sources)
    return f'"id" = %s AND {status} AND "started_at" < %s', [
        _pk(Item, item_id),
        *params,
        _datetime(started_before),
    ]


def item_update(values: dict[str, Any], where: SQL) -> SQL:
    """`UPDATE item SET <values> WHERE <where>`, each value prepared by its field as the
    ORM would."""
    assignments, params = [], []
    for name, value in values.items():
        column, field = _column(Item, name)
        assignments.append(f"{column} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = f'UPDATE "generations_item" SET {", ".join(assignments)} WHERE {where[0]}'  # noqa: S608
    return sql, [*params, *where[1]]


def update_and_count(
    values: dict[str, Any],
    where: SQL,
    *,
    counter: str,
    end: AttemptEnd,
    event: ItemEvent,
    variant_id: UUID,
    generation_id: UUID,
) -> Counted | None:
    """Update the item, close its current attempt as `end` says, add one to `counter` of
    its variant and generation and the attempt's cost to the generation's, and append
    `event`; returns their counters as they stand after the addition, or None when
    `where` matched nothing."""
    now = values["updated_at"]
    variant_set = _increments_sql(Variant, {counter: 1}, now)
    update = item_update(values, where)
    if counts_in_one_statement():
        generation_set = _increments_sql(
            Generation, {counter: 1, "actual_cost": end.cost, "last_event_sequence": 1}, now
        )
        close = _attempt_close_sql(end, now, source="ended")
        return _count_in_one_statement(update, close, variant_set, generation_set, event, now)
    generation_set = _increments_sql(Generation, {counter: 1, "actual_cost": end.cost}, now)
    with transaction.atomic():
        counted = _count_in_steps(update, variant_set, generation_set, variant_id, generation_id)
        if counted is not None:
            _close_in_steps(where, end, now)
            event.record(where[1][0], now)
        return counted


def counts_in_one_statement() -> bool:
    """PostgreSQL runs UPDATEs inside WITH; SQLite does not."""
    return connection.vendor == "postgresql"


def _count_in_one_statement(
    item_update: SQL,
    close: SQL,
    variant_set: SQL,
    generation_set: SQL,
    event: ItemEvent,
    now: datetime,
) -> Counted | None:
    """The item's UPDATE feeds its attempt's and its variant's, which feeds the
    generation's (which also numbers the item's event): rows are locked in the order item,
    attempt, variant, generation, and each lock is held only for this one statement."""
    logged = _ITEM_EVENT_INSERT.format(rows="ended", numbered="totalled", extra="%s::jsonb")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH ended AS ({item_update[0]} RETURNING {_ITEM_COLUMNS}),
            closed AS ({close[0]}),
            counted AS (
                UPDATE "generations_variant" SET {variant_set[0]} FROM ended
                WHERE "generations_variant"."id" = ended."variant_id"
                RETURNING "generations_variant"."generation_id",
                    "total_items", "completed_items", "failed_items", "cancelled_items"
            ),
            totalled AS (
                UPDATE "generations_generation" SET {generation_set[0]} FROM counted
                WHERE "generations_generation"."id" = counted."generation_id"
                RETURNING counted."total_items" AS "variant_total",
                    counted."completed_items" AS "variant_completed",
                    counted."failed_items" AS "variant_failed",
                    counted."cancelled_items" AS "variant_cancelled",
                    "generations_generation"."total_items",
                    "generations_generation"."completed_items",
                    "generations_generation"."failed_items",
                    "generations_generation"."cancelled_items",
                    "generations_generation"."status",
                    "generations_generation"."id" AS "generation_id",
                    "generations_generation"."owner_id",
                    "generations_generation"."last_event_sequence"
            ),
            logged AS ({logged})
            SELECT "variant_total", "variant_completed", "variant_failed", "variant_cancelled",
                "total_items", "completed_items", "failed_items", "cancelled_items", "status"
            FROM totalled
            """,  # noqa: S608 (only column names and ORM-compiled SQL are interpolated)
            [
                *item_update[1],
                *close[1],
                *variant_set[1],
                *generation_set[1],
                *event.params(now),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Counted(_counters(row[:4]), _counters(row[4:8]), row[8])


def _count_in_steps(
    item_update: SQL, variant_set: SQL, generation_set: SQL, variant_id: UUID, generation_id: UUID
) -> Counted | None:
    """The same three UPDATEs, one after the other in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(*item_update)
        if not cursor.rowcount:
            return None
        cursor.execute(
            f"""UPDATE "generations_variant" SET {variant_set[0]} WHERE "id" = %s
            RETURNING "total_items", "completed_items", "failed_items", "cancelled_items"
            """,  # noqa: S608
            [*variant_set[1], _pk(Variant, variant_id)],
        )
        variant = _counters(cursor.fetchone())
        cursor.execute(
            f"""UPDATE "generations_generation" SET {generation_set[0]} WHERE "id" = %s
            RETURNING "total_items", "completed_items", "failed_items", "cancelled_items",
                "status"
            """,  # noqa: S608
            [*generation_set[1], _pk(Generation, generation_id)],
        )
        row = cursor.fetchone()
        return Counted(variant, _counters(row[:4]), row[4])


def _increments_sql(
    model: type[Variant] | type[Generation], increments: dict[str, int | Decimal], now: datetime
) -> SQL:
    """`column = column + %s, ..., updated_at = %s` for the columns that move."""
    assignments, params = [], []
    for name, delta in increments.items():
        if delta:
            column, field = _column(model, name)
            table = connection.ops.quote_name(model._meta.db_table)
            assignments.append(f"{column} = {table}.{column} + %s")
            params.append(field.get_db_prep_value(delta, connection))
    assignments.append('"updated_at" = %s')
    params.append(_column(model, "updated_at")[1].get_db_prep_value(now, connection))
    return ", ".join(assignments), params


def _status_in(statuses: Iterable[str]) -> SQL:
    """`"status" IN (%s, ...)` for these statuses, in a stable order."""
    ordered = sorted(statuses)
    return f'"status" IN ({", ".join(["%s"] * len(ordered))})', ordered


def _column(model: type[Model], name: str) -> tuple[str, Field[Any, Any]]:
    """The quoted column of a concrete field, and the field."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise LookupError(f"{model.__name__}.{name} is not a column")
    return connection.ops.quote_name(field.column), field


def _pk(model: type[Model], value: UUID) -> Any:
    """A primary key as the database driver takes it."""
    return _column(model, "id")[1].get_db_prep_value(value, connection)


def _datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _counters(row: Any) -> Counters:
    total, completed, failed, cancelled = (int(value) for value in row)
    return total, completed, failed, cancelled
