"""The Celery app of the tracking benchmark's worker: the project's own app and tasks,
plus `bare_scene`, the same scene work with no tracking at all (no claim, no counters, no
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
BARE_SCENE = "tests.bench.worker_app.bare_scene"
_done = redis.Redis.from_url(os.environ.get("BENCH_DONE_URL", "redis://127.0.0.1:6379/14"))


@app.task(name=BARE_SCENE)
def bare_scene(scene: dict[str, Any]) -> None:
    """Produce and store one scene with the code `pipeline.scene_render` uses, untracked."""
    # Imported here: the worker loads this module before it sets Django up.
    from generations import pipeline
    from generations.progress import ClaimedScene

    claimed = ClaimedScene(
        id=uuid.UUID(scene["id"]),
        generation_id=uuid.UUID(scene["generation_id"]),
        variant_id=uuid.UUID(scene["variant_id"]),
        number=scene["number"],
        prompt=scene["prompt"],
        attempts=1,
        variant_label=scene["variant_label"],
        kind=scene["kind"],
        provider=scene["provider"],
        provider_model=scene["provider_model"],
        parameters=scene["parameters"],
        generation_status="processing",
    )
    pipeline.scene_produce_and_store(claimed, checkpoint=lambda: None)


@task_postrun.connect
def _report_done(task_id: str, **kwargs: Any) -> None:
    _done.rpush(DONE_LIST, task_id)
