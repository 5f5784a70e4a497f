"""Enqueueing pipeline tasks. Always after the transaction that wrote the rows commits, so
a worker never looks for a row that is not there yet; a broker that cannot be reached is
logged, not raised, because the rows are safe and recovery enqueues them later.

Messages go through Celery's current app, which `config` sets up as the default for every
thread: the domain sends tasks by name and never imports the project's configuration."""

import logging
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from celery import current_app
from django.db import transaction

from generations.events import event_record
from generations.states import EventType

logger = logging.getLogger(__name__)

RUN_GENERATION = "generations.tasks.run_generation"
RENDER_ITEM = "generations.tasks.render_item"
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def dispatch_generation(generation_id: UUID, *, now: datetime, reason: str = "") -> None:
    """Send the generation to the workers once the transaction commits, and say so in its
    event log (in the same transaction); `reason` says why it is sent again."""
    payload = {"task": "run_generation", **({"reason": reason} if reason else {})}
    event_record(generation_id, EventType.DISPATCHED, payload=payload, now=now)
    transaction.on_commit(lambda: _send(RUN_GENERATION, generation_id))


def dispatch_items(item_ids: Iterable[UUID], *, countdown: float | None = None) -> None:
    ids = list(item_ids)

    def send_all() -> None:
        for item_id in ids:
            _send(RENDER_ITEM, item_id, countdown)

    transaction.on_commit(send_all)


def _send(task_name: str, object_id: UUID, countdown: float | None = None) -> None:
    try:
        current_app.send_task(
            task_name,
            args=[str(object_id)],
            countdown=countdown,
            retry=True,
            retry_policy=_PUBLISH_RETRY,
        )
    except Exception:
        logger.warning(
            "Could not enqueue %s(%s); recovery will retry", task_name, object_id, exc_info=True
        )
