"""Item lifecycle writes and the counters they move.

Every function here changes a item's status and the matching counters of its variant and
generation atomically, with relative updates (never read-modify-write) so that concurrent
workers never lose an increment. A claim is one statement, and so is an ending on
PostgreSQL: row locks are held for microseconds, which is what lets many workers finish
items of one generation at once. Rows are always locked in the order item, variant,
generation, which keeps concurrent transactions free of lock cycles.

The ending that brings a variant's counters to their total decides the variant's final
status with one guarded UPDATE; the one that ends the generation's last item decides the
generation (`finalise_if_ended`) under row locks. Either way it happens exactly once. If
the worker dies in between, `recover_stuck_work` finalises what it left.
"""

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, Model, QuerySet
from django.utils import timezone

from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.stages import evaluation_of
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    GenerationStatus,
    ItemStatus,
    rollup_status,
)

MAX_RETRY_DELAY_SECONDS = 300


@dataclass(frozen=True)
class ItemResult:
    """What a finished item stored and measured."""

    asset_key: str
    thumbnail_key: str
    content_type: str
    file_size: int
    checksum: str
    duration_seconds: float | None
    width: int | None
    height: int | None
    cost: Decimal
    provider_job_id: str
    provider_status: str


@dataclass(frozen=True)
class ClaimedItem:
    """A item taken by one delivery, with what rendering it needs from its variant and
    generation (none of which changes once the generation exists)."""

    id: UUID
    generation_id: UUID
    variant_id: UUID
    number: int
    prompt: str
    attempts: int
    variant_label: str
    kind: str
    provider: str
    provider_model: str
    parameters: dict[str, Any]
    generation_status: str


class ItemRef(Protocol):
    """What the writes below need to know of a item: a ClaimedItem or a Item row."""

    @property
    def id(self) -> UUID: ...
    @property
    def generation_id(self) -> UUID: ...
    @property
    def variant_id(self) -> UUID: ...
    @property
    def attempts(self) -> int: ...


# The claimed item's own columns, then what rendering needs from its variant and
# generation, read by the claiming UPDATE itself.
_CLAIM_RETURNING = """
    "id", "generation_id", "variant_id", "number", "prompt", "attempts",
    (SELECT "label" FROM "generations_variant"
     WHERE "generations_variant"."id" = "generations_item"."variant_id"),
    (SELECT "kind" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id"),
    (SELECT "provider" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id"),
    (SELECT "provider_model" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id"),
    (SELECT "input" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id"),
    (SELECT "status" FROM "generations_generation"
     WHERE "generations_generation"."id" = "generations_item"."generation_id")
"""


# Takes a queued item, or takes back a processing one for a redelivery of the same message
# (its worker died mid-item) while attempts remain; recovery fails it after that.
_CLAIM_SQL = f"""
    UPDATE "generations_item" SET "status" = %s, "claim_token" = %s,
        "attempts" = "attempts" + 1, "started_at" = %s, "updated_at" = %s
    WHERE "id" = %s AND (
        "status" = %s OR ("status" = %s AND "claim_token" = %s AND "attempts" < %s))
    RETURNING {_CLAIM_RETURNING}
"""  # noqa: S608 (a constant)


def item_claim(*, item_id: UUID, claim_token: str) -> ClaimedItem | None:
    """Take a queued item for this delivery and return it, or None when it is not
    available (ended, cancelled, or held by another delivery). One statement."""
    now = _datetime(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            [
                ItemStatus.PROCESSING,
                claim_token,
                now,
                now,
                _pk(Item, item_id),
                ItemStatus.QUEUED,
                ItemStatus.PROCESSING,
                claim_token,
                settings.ITEM_MAX_ATTEMPTS,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    item_id, generation_id, variant_id, number, prompt, attempts = row[:6]
    label, kind, provider, provider_model, parameters, generation_status = row[6:]
    return ClaimedItem(
        id=_uuid(item_id),
        generation_id=_uuid(generation_id),
        variant_id=_uuid(variant_id),
        number=int(number),
        prompt=prompt,
        attempts=int(attempts),
        variant_label=label,
        kind=kind,
        provider=provider,
        provider_model=provider_model,
        parameters=_json(parameters),
        generation_status=generation_status,
    )


def item_complete(*, item: ItemRef, claim_token: str, result: ItemResult) -> bool:
    """Record a finished item whose objects are already stored. False when the item was
    taken away meanwhile (cancelled or recovered), in which case nothing is counted."""
    now = timezone.now()
    return _end_item(
        item,
        _held_by(item, claim_token),
        {
            "status": ItemStatus.COMPLETED,
            "completed_at": now,
            "updated_at": now,
            "asset_key": result.asset_key,
            "thumbnail_key": result.thumbnail_key,
            "content_type": result.content_type,
            "file_size": result.file_size,
            "checksum": result.checksum,
            "duration_seconds": result.duration_seconds,
            "width": result.width,
            "height": result.height,
            "cost": result.cost,
            "provider_job_id": result.provider_job_id,
            "provider_status": result.provider_status,
            "error_code": "",
            "error_message": "",
        },
        _Increments(completed=1, cost=result.cost),
    )


def item_fail(*, item: ItemRef, claim_token: str, error: GenerationError) -> float | None:
    """Record a failed attempt. A retryable error with attempts left puts the item back
    in the queue and returns the delay before the next attempt; otherwise the item fails
    for good and None is returned."""
    now = timezone.now()
    if error.retryable and item.attempts < settings.ITEM_MAX_ATTEMPTS:
        requeue = _item_update_sql(
            {
                "status": ItemStatus.QUEUED,
                "claim_token": "",
                "queued_at": now,
                "updated_at": now,
                "error_code": error.code,
                "error_message": error.message,
            },
            _held_by(item, claim_token),
        )
        with connection.cursor() as cursor:
            cursor.execute(*requeue)
            requeued = cursor.rowcount
        return retry_delay(item.attempts) if requeued else None
    _end_item(
        item,
        _held_by(item, claim_token),
        {
            "status": ItemStatus.FAILED,
            "completed_at": now,
            "updated_at": now,
            "error_code": error.code,
            "error_message": error.message,
        },
        _Increments(failed=1),
    )
    return None


def item_stop_cancelled(*, item: ItemRef, claim_token: str) -> None:
    """A running item reached a checkpoint after its generation was cancelled."""
    now = timezone.now()
    _end_item(
        item,
        _held_by(item, claim_token),
        {
            "status": ItemStatus.CANCELLED,
            "completed_at": now,
            "updated_at": now,
            "error_code": ErrorCode.CANCELLED,
            "error_message": "Stopped because the generation was cancelled.",
        },
        _Increments(cancelled=1),
    )


def item_recover_lost(*, item_id: UUID, started_before: datetime) -> bool:
    """A item still processing since before `started_before` lost its worker: queue it
    again while attempts remain (True: dispatch it), else fail it as worker_lost."""
    now = timezone.now()
    stale = Item.objects.filter(
        id=item_id, status=ItemStatus.PROCESSING, started_at__lt=started_before
    )
    if stale.filter(attempts__lt=settings.ITEM_MAX_ATTEMPTS).update(
        status=ItemStatus.QUEUED, claim_token="", queued_at=now, updated_at=now
    ):
        return True
    item = stale.first()
    if item is not None:
        _end_item(
            item,
            (
                '"id" = %s AND "status" = %s AND "started_at" < %s',
                [_pk(Item, item_id), ItemStatus.PROCESSING, _datetime(started_before)],
            ),
            {
                "status": ItemStatus.FAILED,
                "completed_at": now,
                "updated_at": now,
                "error_code": ErrorCode.WORKER_LOST,
                "error_message": f"The worker stopped responding {item.attempts} times.",
            },
            _Increments(failed=1),
        )
    return False


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base, ... capped."""
    base = settings.ITEM_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 (spreading retries, not security)
    return float(min(base * jitter, MAX_RETRY_DELAY_SECONDS))


@dataclass(frozen=True)
class _Increments:
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    cost: Decimal = Decimal(0)


# (total, completed, failed, cancelled) of a variant or a generation.
Counters = tuple[int, int, int, int]
# A statement or a fragment of one, and its parameters.
SQL = tuple[str, Sequence[Any]]


def _held_by(item: ItemRef, claim_token: str) -> SQL:
    """WHERE the item is still processing for this delivery."""
    return (
        '"id" = %s AND "status" = %s AND "claim_token" = %s',
        [_pk(Item, item.id), ItemStatus.PROCESSING, claim_token],
    )


def _end_item(item: ItemRef, where: SQL, values: dict[str, Any], increments: _Increments) -> bool:
    """End the item if `where` still matches it (it does not once the item was taken
    away) and count it in its variant and generation, in one transaction; then, if it
    was the last item of either, decide their final status. False when nothing matched."""
    counted = _update_and_count(item, where, values, increments)
    if counted is None:
        return False
    now = values["updated_at"]
    if _all_ended(counted.generation):
        # Every variant, in case an earlier variant's finalisation was lost with its worker.
        finalise_if_ended(generation_id=item.generation_id, now=now)
    elif _all_ended(counted.variant):
        # The counters just returned are the variant's last: one guarded UPDATE decides it.
        _finalise_variant(
            item.variant_id,
            counted.variant,
            cancel_requested=counted.generation_status == GenerationStatus.CANCELLED,
            now=now,
        )
    return True


@dataclass(frozen=True)
class _Counted:
    """A variant's and its generation's counters right after an ending was counted."""

    variant: Counters
    generation: Counters
    generation_status: str


def _update_and_count(
    item: ItemRef, where: SQL, values: dict[str, Any], increments: _Increments
) -> _Counted | None:
    """Update the item and add to its variant's and generation's counters; returns their
    counters as they stand after the addition, or None when `where` matched nothing."""
    now = values["updated_at"]
    item_update = _item_update_sql(values, where)
    variant_set = _increments_sql(
        Variant,
        {
            "completed_items": increments.completed,
            "failed_items": increments.failed,
            "cancelled_items": increments.cancelled,
        },
        now,
    )
    generation_set = _increments_sql(
        Generation,
        {
            "completed_items": increments.completed,
            "failed_items": increments.failed,
            "cancelled_items": increments.cancelled,
            "actual_cost": increments.cost,
        },
        now,
    )
    if _counts_in_one_statement():
        return _count_in_one_statement(item_update, variant_set, generation_set)
    return _count_in_steps(item, item_update, variant_set, generation_set)


def _counts_in_one_statement() -> bool:
    """PostgreSQL runs UPDATEs inside WITH; SQLite does not."""
    return connection.vendor == "postgresql"


def _count_in_one_statement(
    item_update: SQL, variant_set: SQL, generation_set: SQL
) -> _Counted | None:
    """The item's UPDATE feeds the variant's, which feeds the generation's: rows are
    locked in the order item, variant, generation, and each lock is held only for this
    one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH ended AS ({item_update[0]} RETURNING "variant_id"),
            counted AS (
                UPDATE "generations_variant" SET {variant_set[0]} FROM ended
                WHERE "generations_variant"."id" = ended."variant_id"
                RETURNING "generations_variant"."generation_id",
                    "total_items", "completed_items", "failed_items", "cancelled_items"
            )
            UPDATE "generations_generation" SET {generation_set[0]} FROM counted
            WHERE "generations_generation"."id" = counted."generation_id"
            RETURNING counted."total_items", counted."completed_items",
                counted."failed_items", counted."cancelled_items",
                "generations_generation"."total_items",
                "generations_generation"."completed_items",
                "generations_generation"."failed_items",
                "generations_generation"."cancelled_items", "generations_generation"."status"
            """,  # noqa: S608 (only column names and ORM-compiled SQL are interpolated)
            [*item_update[1], *variant_set[1], *generation_set[1]],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _Counted(_counters(row[:4]), _counters(row[4:8]), row[8])


def _count_in_steps(
    item: ItemRef, item_update: SQL, variant_set: SQL, generation_set: SQL
) -> _Counted | None:
    """The same three UPDATEs, one after the other in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(*item_update)
        if not cursor.rowcount:
            return None
        cursor.execute(
            f"""UPDATE "generations_variant" SET {variant_set[0]} WHERE "id" = %s
            RETURNING "total_items", "completed_items", "failed_items", "cancelled_items"
            """,  # noqa: S608
            [*variant_set[1], _pk(Variant, item.variant_id)],
        )
        variant = _counters(cursor.fetchone())
        cursor.execute(
            f"""UPDATE "generations_generation" SET {generation_set[0]} WHERE "id" = %s
            RETURNING "total_items", "completed_items", "failed_items", "cancelled_items",
                "status"
            """,  # noqa: S608
            [*generation_set[1], _pk(Generation, item.generation_id)],
        )
        row = cursor.fetchone()
        return _Counted(variant, _counters(row[:4]), row[4])


def _item_update_sql(values: dict[str, Any], where: SQL) -> SQL:
    """`UPDATE item SET <values> WHERE <where>`, each value prepared by its field as the
    ORM would (written out rather than compiled by the ORM: this runs for every item)."""
    assignments, params = [], []
    for name, value in values.items():
        column, field = _column(Item, name)
        assignments.append(f"{column} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = f'UPDATE "generations_item" SET {", ".join(assignments)} WHERE {where[0]}'  # noqa: S608
    return sql, [*params, *where[1]]


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


def _column(model: type[Model], name: str) -> tuple[str, Field[Any, Any]]:
    """The quoted column of a concrete field, and the field."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise LookupError(f"{model.__name__}.{name} is not a column")
    return connection.ops.quote_name(field.column), field


def _pk(model: type[Model], pk: UUID) -> Any:
    return _column(model, "id")[1].get_db_prep_value(pk, connection)


def _datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _counters(row: Any) -> Counters:
    total, completed, failed, cancelled = (int(value) for value in row)
    return total, completed, failed, cancelled


def _all_ended(counters: Counters) -> bool:
    total, completed, failed, cancelled = counters
    return completed + failed + cancelled >= total


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _json(value: Any) -> dict[str, Any]:
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(decoded or {})


def finalise_if_ended(
    *, generation_id: UUID, variant_ids: list[UUID] | None = None, now: datetime
) -> None:
    """Decide the final status of the given variants (all of them when None) and of the
    generation if their last item has ended. Holds their rows locked (variants, then the
    generation: the order the counting statements take them in) so that each is decided
    exactly once, however many callers race here. Safe to call again: an ended row is
    left as it is."""
    variants_of = Variant.objects.filter(generation_id=generation_id)
    if variant_ids is not None:
        variants_of = variants_of.filter(id__in=variant_ids)
    with transaction.atomic():
        variants = list(variants_of.select_for_update().order_by("id"))
        generation = Generation.objects.select_for_update().get(id=generation_id)
        cancel_requested = generation.status == GenerationStatus.CANCELLED
        for variant in variants:
            if variant.status not in ACTIVE_GENERATION_STATUSES:
                continue
            _finalise_variant(
                variant.id,
                (
                    variant.total_items,
                    variant.completed_items,
                    variant.failed_items,
                    variant.cancelled_items,
                ),
                cancel_requested=cancel_requested,
                now=now,
            )
        _finalise_generation(generation, cancel_requested=cancel_requested, now=now)


def _finalise_variant(
    variant_id: UUID, counters: Counters, *, cancel_requested: bool, now: datetime
) -> None:
    """Decide a variant's final status from its counters, if they say it has ended. The
    UPDATE matches only while the variant is active with these very counters, so a
    variant is decided once, and never from counters a retry has reset since."""
    total, completed, failed, cancelled = counters
    status = rollup_status(
        total=total,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        cancel_requested=cancel_requested,
    )
    if status is None:
        return
    code, message = ("", "")
    if failed:
        code, message = _failure_summary(Item.objects.filter(variant_id=variant_id))
    Variant.objects.filter(
        id=variant_id,
        status__in=ACTIVE_GENERATION_STATUSES,
        completed_items=completed,
        failed_items=failed,
        cancelled_items=cancelled,
    ).update(
        status=status,
        completed_at=now,
        updated_at=now,
        error_code=code,
        error_message=message,
    )


def _finalise_generation(generation: Generation, *, cancel_requested: bool, now: datetime) -> None:
    generation_id = generation.id
    status = rollup_status(
        total=generation.total_items,
        completed=generation.completed_items,
        failed=generation.failed_items,
        cancelled=generation.cancelled_items,
        cancel_requested=cancel_requested,
    )
    if status is None:
        return
    if generation.status == GenerationStatus.PROCESSING:
        code, message = ("", "")
        if generation.failed_items:
            code, message = _failure_summary(Item.objects.filter(generation_id=generation_id))
        Generation.objects.filter(id=generation_id).update(
            status=status,
            completed_at=now,
            updated_at=now,
            generation_time_seconds=elapsed_seconds(generation, now),
            error_code=code,
            error_message=message,
        )
    elif generation.status != GenerationStatus.CANCELLED:
        return
    # A cancelled generation ended earlier; its evaluation waits for its last item.
    GenerationMetadata.objects.filter(generation_id=generation_id).update(
        evaluation=evaluation_of(generation_id), updated_at=now
    )


def elapsed_seconds(generation: Generation, now: datetime) -> float:
    """Active time: earlier runs (before a retry) plus the current one."""
    earlier = generation.generation_time_seconds or 0.0
    if generation.started_at is None:
        return earlier
    return earlier + max((now - generation.started_at).total_seconds(), 0.0)


def _failure_summary(items: QuerySet[Item]) -> tuple[str, str]:
    """The most frequent error code among failed items, and a message counting them."""
    failed = list(items.filter(status=ItemStatus.FAILED).values_list("error_code", "error_message"))
    if not failed:
        return "", ""
    codes = Counter(code for code, _ in failed)
    code = codes.most_common(1)[0][0]
    example = next(message for failed_code, message in failed if failed_code == code)
    return code, f"{len(failed)} item(s) failed. {example}"
