"""Celery tasks: thin wrappers that load ids and call one pipeline service. Delivery is
at-least-once (late acknowledgement, redelivery when a worker dies); the services make a
repeated delivery harmless."""

from uuid import UUID

from celery import Task, shared_task

from generations.dispatch import dispatch_items
from generations.errors import GenerationError
from generations.pipeline import recovery
from generations.pipeline.lifecycle import retry_delay
from generations.pipeline.prepare import generation_fail_unrendered, generation_prepare
from generations.pipeline.render import item_render
from generations.purge import generations_purge_expired

PREPARE_MAX_RETRIES = 5


@shared_task(bind=True, max_retries=PREPARE_MAX_RETRIES)
def run_generation(self: Task, generation_id: str) -> None:  # type: ignore[type-arg]
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
    item_render(item_id=UUID(item_id), claim_token=str(self.request.id))


@shared_task
def recover_stuck_work() -> dict[str, int]:
    return recovery.recover_stuck_work()


@shared_task
def purge_expired_trash() -> int:
    return generations_purge_expired()
