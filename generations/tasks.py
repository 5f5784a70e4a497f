"""Celery tasks: thin wrappers that load ids and call one pipeline service. Delivery is
at-least-once (late acknowledgement, redelivery when a worker dies); the services make a
repeated delivery harmless.

A task that loses its database connection (a dropped connection, a restarting server)
closes it and runs again with backoff, so the next attempt starts on a fresh one."""

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, connections

from generations.dispatch import dispatch_items
from generations.errors import GenerationError
from generations.pipeline import recovery
from generations.pipeline.lifecycle import retry_delay
from generations.pipeline.prepare import generation_fail_unrendered, generation_prepare
from generations.pipeline.render import item_render
from generations.purge import generations_purge_expired

# Retries of the stages after a transient error: with the backoff, about 18 minutes in
# all, so that a storage outage of up to STORAGE_OUTAGE_SECONDS is ridden out.
PREPARE_MAX_RETRIES = 10
# Attempts of a task whose database went away: about ten minutes of backoff in all.
DATABASE_MAX_RETRIES = 10


@contextmanager
def _database_errors_retried(task: Task) -> Iterator[None]:  # type: ignore[type-arg]
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        connections.close_all()
        raise task.retry(
            countdown=retry_delay(task.request.retries + 1),
            exc=exc,
            max_retries=DATABASE_MAX_RETRIES,
        ) from exc


@shared_task(bind=True, max_retries=PREPARE_MAX_RETRIES)
def run_generation(self: Task, generation_id: str) -> None:  # type: ignore[type-arg]
    with _database_errors_retried(self):
        try:
            item_ids = generation_prepare(generation_id=UUID(generation_id))
        except GenerationError as exc:
            if self.request.retries >= PREPARE_MAX_RETRIES:
                generation_fail_unrendered(generation_id=UUID(generation_id), error=exc)
                return
            raise self.retry(countdown=retry_delay(self.request.retries + 1), exc=exc) from exc
        dispatch_items(item_ids)


@shared_task(bind=True)
def render_item(self: Task, item_id: str) -> None:  # type: ignore[type-arg]
    with _database_errors_retried(self):
        item_render(item_id=UUID(item_id), claim_token=str(self.request.id))


@shared_task(bind=True)
def recover_stuck_work(self: Task) -> dict[str, int]:  # type: ignore[type-arg]
    with _database_errors_retried(self):
        counts = recovery.recover_stuck_work()
    return counts


@shared_task
def purge_expired_trash() -> int:
    return generations_purge_expired()
