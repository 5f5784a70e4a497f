"""The Celery app of the tracking benchmark's worker: the project's own app and tasks,
plus `bare_item`, the same item work with no tracking at all (no claim, no counters, no
database), and a signal that reports every finished task on a Redis list so that the
benchmark times both kinds of task the same way.

Run as `celery -A tests.bench.worker_app worker` with BENCH_DONE_URL set.
"""

import os
import uuid
from typing import Any

import redis
from celery.signals import task_postrun

from config.celery import app

DONE_LIST = "genvault-bench-done"
BARE_ITEM = "tests.bench.worker_app.bare_item"
_done = redis.Redis.from_url(os.environ.get("BENCH_DONE_URL", "redis://127.0.0.1:6379/14"))


@app.task(name=BARE_ITEM)
def bare_item(item: dict[str, Any]) -> None:
    """Produce and store one item with the code `item_render` uses, untracked."""
    # Imported here: the worker loads this module before it sets Django up.
    from generations.pipeline.lifecycle import ClaimedItem
    from generations.pipeline.render import item_produce_and_store

    claimed = ClaimedItem(
        id=uuid.UUID(item["id"]),
        generation_id=uuid.UUID(item["generation_id"]),
        variant_id=uuid.UUID(item["variant_id"]),
        number=item["number"],
        prompt=item["prompt"],
        attempts=1,
        variant_label=item["variant_label"],
        kind=item["kind"],
        provider=item["provider"],
        provider_model=item["provider_model"],
        parameters=item["parameters"],
        generation_status="processing",
    )
    item_produce_and_store(claimed, checkpoint=lambda: None)


@task_postrun.connect
def _report_done(task_id: str, **kwargs: Any) -> None:
    _done.rpush(DONE_LIST, task_id)
