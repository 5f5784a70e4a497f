"""Writing to a generation's event log, and reading the log as an outbox.

`event_record` appends an event in the caller's transaction, so an event exists exactly
when the change it records was committed. The item lifecycle's hot statements append
their events inside their own SQL (`generations.pipeline.statements`), from the same
sequence.

`events_after` is the outbox: every committed event after a cursor, in commit order, so
that a consumer that keeps its cursor (webhooks, notifications) neither skips an event
nor sees one twice. On PostgreSQL ids are handed out before commit, so a later id can
commit first; each event therefore carries its transaction's id, and the reader stops at
the oldest transaction still running.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from generations.models import Event, Generation
from generations.states import Actor

# The oldest transaction of this database still running (or, with none, the next one to
# start): events of it and of later ones may not be committed yet, so the outbox does not
# go past it. Transactions are named as 64-bit ids (the stored kind); the running ones are
# listed as 32-bit ids, widened here with the epoch of the snapshot's next id. Other
# databases' transactions never hold the outbox back.
_VISIBLE_HORIZON = """
    WITH next AS (
        SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS id
    ),
    running AS (
        SELECT ((next.id >> 32) << 32) | activity.backend_xid::text::bigint AS id, next.id AS next
        FROM pg_stat_activity AS activity, next
        WHERE activity.datname = current_database() AND activity.backend_xid IS NOT NULL
    )
    SELECT LEAST(
        (SELECT id FROM next),
        (SELECT min(CASE WHEN id > next THEN id - 4294967296 ELSE id END) FROM running)
    )
"""


def event_record(
    generation_id: UUID,
    type: str,
    *,
    by: User | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Event:
    """Append an event to the generation's log, with its next sequence number, in the
    caller's transaction. `by` is who asked: its owner, staff, or (None) the system."""
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE "generations_generation" SET "last_event_sequence" = '
            '"last_event_sequence" + 1 WHERE "id" = %s '
            'RETURNING "last_event_sequence", "owner_id"',
            [_generation_pk(generation_id)],
        )
        row = cursor.fetchone()
    if row is None:
        raise Generation.DoesNotExist(f"No generation {generation_id} to record {type} for.")
    sequence, owner_id = int(row[0]), int(row[1])
    actor = _actor(by, owner_id)
    return Event.objects.create(
        generation_id=generation_id,
        owner_id=owner_id,
        sequence=sequence,
        type=type,
        actor=actor,
        actor_user=by,
        payload=payload or {},
        created_at=now or timezone.now(),
    )


def _actor(by: User | None, owner_id: int) -> str:
    if by is None:
        return Actor.SYSTEM
    return Actor.USER if by.pk == owner_id else Actor.STAFF


def _generation_pk(generation_id: UUID) -> Any:
    return Generation._meta.get_field("id").get_db_prep_value(generation_id, connection)


@dataclass(frozen=True, order=True)
class Cursor:
    """Where an outbox consumer stands: after the event with this (transaction, id)."""

    transaction_id: int = 0
    event_id: int = 0

    @classmethod
    def after(cls, event: Event) -> "Cursor":
        return cls(event.transaction_id or 0, event.id)


def events_after(cursor: Cursor, *, limit: int = 500) -> list[Event]:
    """Committed events after `cursor`, in commit order, at most `limit` of them. An event
    whose transaction may still be running is left for a later call."""
    events = Event.objects.order_by("transaction_id", "id")
    if connection.vendor == "postgresql":
        with connection.cursor() as db:
            db.execute(_VISIBLE_HORIZON)
            row = db.fetchone()
        horizon = int(row[0]) if row else 0
        events = events.filter(transaction_id__lt=horizon).filter(
            Q(transaction_id__gt=cursor.transaction_id)
            | Q(transaction_id=cursor.transaction_id, id__gt=cursor.event_id)
        )
    else:
        events = events.filter(id__gt=cursor.event_id)
    return list(events[:limit])
