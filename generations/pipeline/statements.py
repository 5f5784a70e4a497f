"""The SQL of the item lifecycle writes, written out rather than compiled by the ORM because
it runs for every item: the claim (opening the item's attempt), the item's UPDATE, closing
its attempt, the counter increments, and counting an ending in one statement on
PostgreSQL (UPDATEs inside WITH) or step by step elsewhere.

Counters move by relative updates (`column = column + n`), never read-modify-write, and
rows are locked in the order item, variant, generation, which keeps concurrent
transactions free of lock cycles.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, transaction

from generations.models import Attempt, Generation, Item, Variant
from generations.pipeline.records_sql import (
    ATTEMPT_OPEN,
    ITEM_EVENT_INSERT,
    LOST_ON_RECLAIM,
    NEXT_SEQUENCE,
    AttemptEnd,
    ItemEvent,
    attempt_close_sql,
    close_in_steps,
)
from generations.pipeline.sql import SQL, datetime_param, pk, quoted_column, status_in
from generations.states import EventType, ItemTransition

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


def claim(
    *,
    item_id: UUID,
    claim_token: str,
    now: datetime,
    max_attempts: int,
    worker: str,
    silent_since: datetime,
) -> Sequence[Any] | None:
    """Take an item the claim may start from, or take back one still held by this
    delivery whose worker has been silent since `silent_since` (it died mid-item and the
    message was redelivered) while attempts remain; recovery fails it after that. A copy
    of the message whose worker is alive gets nothing. The claim opens the item's next attempt (and,
    on a take-back, closes the one the dead worker left open). One statement on
    PostgreSQL. Returns the _CLAIM_RETURNING columns, or None when nothing was taken."""
    transition = ItemTransition.CLAIM
    claimable, claimable_params = status_in(transition.sources)
    update = f"""
        UPDATE "generations_item" SET "status" = %s, "claim_token" = %s,
            "attempts" = "attempts" + 1, "started_at" = %s, "heartbeat_at" = %s,
            "updated_at" = %s
        WHERE "id" = %s AND (
            {claimable} OR ("status" = %s AND "claim_token" = %s AND "attempts" < %s
                AND "heartbeat_at" < %s))
        RETURNING {_CLAIM_RETURNING}
    """  # noqa: S608 (only constants are interpolated)
    moment = datetime_param(now)
    params = [transition.target, claim_token, moment, moment, moment, pk(Item, item_id)]
    params += [*claimable_params, transition.target, claim_token, max_attempts]
    params += [datetime_param(silent_since)]
    if counts_in_one_statement():
        close = attempt_close_sql(LOST_ON_RECLAIM, now, source="claimed", number='"attempts" - 1')
        opened = ATTEMPT_OPEN.format(source="claimed")
        numbered = NEXT_SEQUENCE.format(rows="claimed")
        logged = ITEM_EVENT_INSERT.format(
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


def heartbeat(*, item_id: UUID, claim_token: str, now: datetime) -> str | None:
    """Renew the lease of an item still held by this delivery, returning its generation's
    status; None when the item is no longer held by it."""
    held = held_by(item_id, claim_token, ItemTransition.COMPLETE)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE "generations_item" SET "heartbeat_at" = %s WHERE {held[0]}
            RETURNING (SELECT "status" FROM "generations_generation"
                WHERE "generations_generation"."id" = "generations_item"."generation_id")
            """,  # noqa: S608 (only constants are interpolated)
            [datetime_param(now), *held[1]],
        )
        row = cursor.fetchone()
    return str(row[0]) if row else None


def update_and_close(values: dict[str, Any], where: SQL, end: AttemptEnd, event: ItemEvent) -> int:
    """Update the item (`where` names it by its id), close its current attempt as `end`
    says and append `event`, in one statement on PostgreSQL; returns how many items
    changed."""
    update = item_update(values, where)
    now = values["updated_at"]
    if counts_in_one_statement():
        close = attempt_close_sql(end, now, source="changed")
        numbered = NEXT_SEQUENCE.format(rows="changed")
        logged = ITEM_EVENT_INSERT.format(rows="changed", numbered="numbered", extra="%s::jsonb")
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
            close_in_steps(where, end, now)
            event.record(where[1][0], now)
        return changed


def held_by(item_id: UUID, claim_token: str, transition: ItemTransition) -> SQL:
    """WHERE the item may take `transition` and is still held by this delivery."""
    status, params = status_in(transition.sources)
    return f'"id" = %s AND {status} AND "claim_token" = %s', [
        pk(Item, item_id),
        *params,
        claim_token,
    ]


def lost_since(item_id: UUID, silent_since: datetime, transition: ItemTransition) -> SQL:
    """WHERE the item may take `transition` and its worker has said nothing since
    `silent_since`."""
    status, params = status_in(transition.sources)
    return f'"id" = %s AND {status} AND "heartbeat_at" < %s', [
        pk(Item, item_id),
        *params,
        datetime_param(silent_since),
    ]


def item_update(values: dict[str, Any], where: SQL) -> SQL:
    """`UPDATE item SET <values> WHERE <where>`, each value prepared by its field as the
    ORM would."""
    assignments, params = [], []
    for name, value in values.items():
        column, field = quoted_column(Item, name)
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
        close = attempt_close_sql(end, now, source="ended")
        return _count_in_one_statement(update, close, variant_set, generation_set, event, now)
    generation_set = _increments_sql(Generation, {counter: 1, "actual_cost": end.cost}, now)
    with transaction.atomic():
        counted = _count_in_steps(update, variant_set, generation_set, variant_id, generation_id)
        if counted is not None:
            close_in_steps(where, end, now)
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
    logged = ITEM_EVENT_INSERT.format(rows="ended", numbered="totalled", extra="%s::jsonb")
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
            [*variant_set[1], pk(Variant, variant_id)],
        )
        variant = _counters(cursor.fetchone())
        cursor.execute(
            f"""UPDATE "generations_generation" SET {generation_set[0]} WHERE "id" = %s
            RETURNING "total_items", "completed_items", "failed_items", "cancelled_items",
                "status"
            """,  # noqa: S608
            [*generation_set[1], pk(Generation, generation_id)],
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
            column, field = quoted_column(model, name)
            table = connection.ops.quote_name(model._meta.db_table)
            assignments.append(f"{column} = {table}.{column} + %s")
            params.append(field.get_db_prep_value(delta, connection))
    assignments.append('"updated_at" = %s')
    params.append(quoted_column(model, "updated_at")[1].get_db_prep_value(now, connection))
    return ", ".join(assignments), params


def _counters(row: Any) -> Counters:
    total, completed, failed, cancelled = (int(value) for value in row)
    return total, completed, failed, cancelled
