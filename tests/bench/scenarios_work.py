"""Writes measured in worker processes or in-process: the progress counters under
contention, the tracking overhead through a real Celery worker, and the purge."""

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import redis
from django.contrib.auth.models import User
from django.db import connection, connections
from django.db.models import Sum

from config.celery import app
from generations import purge as purging
from generations.dispatch import RENDER_ITEM
from generations.models import Generation, Item, Variant
from generations.pipeline.lifecycle import item_claim, item_complete
from generations.pipeline.render import item_render
from generations.purge import generations_purge_expired
from generations.selectors import trash_cutoff
from generations.tests.pipeline_helpers import provider_result
from storage.services import objects_delete, prefix_delete
from tests.bench import baselines, database, measure, worker_app
from tests.bench.measure import Result, ms

RESULT = provider_result(
    asset_key="bench/asset.mp4", thumbnail_key="bench/thumb.jpg", provider_job_id="bench"
)
LABELS = ("soft", "medium", "aggressive", "ultra")
Step = Callable[..., Any]
# name -> (claim, complete)
STRATEGIES: dict[str, tuple[Step, Step]] = {
    "one-statement claim and ending (item_claim, item_complete)": (item_claim, item_complete),
    "get()/save()": (baselines.claim_naive, baselines.complete_get_save),
    "select_for_update()": (baselines.claim_naive, baselines.complete_select_for_update),
}


def _generation_with_queued_items(
    owner: User,
    items: int,
    *,
    kind: str = "video_ad",
    parameters: dict[str, Any] | None = None,
) -> tuple[uuid.UUID, list[str]]:
    """A processing generation with 4 variants and `items` queued items, inserted in bulk."""
    generation_id = uuid.uuid4()
    per_variant = items // 4
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO generations_generation (id, owner_id, kind, title, prompt, input,
                provider, provider_model, provider_request_id, source_url, source_type, status,
                total_items, completed_items, failed_items, cancelled_items, cost_estimate,
                actual_cost, error_code, error_message, created_at, updated_at, started_at)
               VALUES (%s, %s, %s, 'bench', '', %s, 'local', 'local-render-1', '', '',
                'none', 'processing', %s, 0, 0, 0, 0, 0, '', '', now(), now(), now())""",
            [generation_id, owner.id, kind, json.dumps(parameters or {}), per_variant * 4],
        )
        cursor.execute(
            """INSERT INTO generations_generationmetadata (generation_id, analysis,
                transformation, prompts, evaluation, created_at, updated_at)
               VALUES (%s, '{}', '{}', '{}', '{}', now(), now())""",
            [generation_id],
        )
        cursor.execute(
            """INSERT INTO generations_variant (id, generation_id, label, position, status,
                total_items, completed_items, failed_items, cancelled_items, error_code,
                error_message, created_at, updated_at)
               SELECT gen_random_uuid(), %s, (%s::text[])[p + 1], p, 'processing', %s,
                0, 0, 0, '', '', now(), now() FROM generate_series(0, 3) p""",
            [generation_id, list(LABELS), per_variant],
        )
        cursor.execute(
            """INSERT INTO generations_item (id, generation_id, variant_id, number, prompt,
                provider_job_id, provider_status, status, attempts, claim_token, asset_key,
                thumbnail_key, content_type, checksum, cost, error_code, error_message,
                created_at, updated_at, queued_at)
               SELECT gen_random_uuid(), %s, v.id, n, '', '', '', 'queued', 0, '', '', '',
                '', '', 0, '', '', now(), now(), now()
               FROM generations_variant v, generate_series(1, %s) n
               WHERE v.generation_id = %s
               RETURNING id""",
            [generation_id, per_variant, generation_id],
        )
        item_ids = [str(row[0]) for row in cursor.fetchall()]
    return generation_id, item_ids


def _work(strategy: str, item_ids: list[str], start: Any) -> None:
    """One worker process: claim and complete its items with `strategy`."""
    connections.close_all()  # never share the parent's connection
    claim, complete = STRATEGIES[strategy]
    token = f"bench-{uuid.uuid4().hex[:12]}"
    start.wait()
    for item_id in item_ids:
        item = claim(item_id=uuid.UUID(item_id), claim_token=token)
        if item is not None:
            complete(item=item, claim_token=token, result=RESULT)
    connections.close_all()


def _run(strategy: str, owner: User, workers: int, per_worker: int) -> dict[str, Any]:
    generation_id, item_ids = _generation_with_queued_items(owner, workers * per_worker)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(workers + 1)
    connections.close_all()
    processes = [
        context.Process(target=_work, args=(strategy, item_ids[n::workers], start))
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    start.wait()
    started = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    generation = Generation.objects.get(id=generation_id)
    completed_items = Item.objects.filter(generation_id=generation_id, status="completed").count()
    variant_sum = Variant.objects.filter(generation_id=generation_id).aggregate(
        total=Sum("completed_items")
    )["total"]
    lost = completed_items - generation.completed_items + (completed_items - variant_sum)
    return {
        "seconds": seconds,
        "items_per_s": completed_items / seconds,
        "completed": completed_items,
        "expected": len(item_ids),
        "lost": lost,
        "status": generation.status,
        "exit_codes": [process.exitcode for process in processes],
    }


def counters(*, owner: User, workers: int, per_worker: int, rounds: int) -> list[Result]:
    """Each strategy in turn within every round (A, B, C, A, B, C ...)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in STRATEGIES}
    for _ in range(rounds):
        for name in STRATEGIES:
            runs[name].append(_run(name, owner, workers, per_worker))
    section = f"Progress counters ({workers} processes x {per_worker} items of one generation)"
    sfu = sorted(run["items_per_s"] for run in runs["select_for_update()"])
    sfu_median = sfu[len(sfu) // 2]
    results = []
    for name, items in runs.items():
        rates = sorted(run["items_per_s"] for run in items)
        median = rates[len(rates) // 2]
        lost = sum(run["lost"] for run in items)
        crashed = [code for run in items for code in run["exit_codes"] if code != 0]
        tracked = name.startswith("one-statement")
        met: bool | None = None
        if tracked:
            met = lost == 0 and not crashed and median >= 2 * sfu_median
        results.append(
            Result(
                section=section,
                name=name,
                target="0 lost, >= 2x select_for_update" if tracked else "baseline",
                measured=f"{median:.0f} items/s (median of {len(items)})",
                baseline=f"{sfu_median:.0f} items/s (select_for_update)",
                ratio=f"{median / sfu_median:.2f}x",
                met=met,
                note=f"lost increments: {lost}"
                + (f"; worker exit codes {crashed}" if crashed else ""),
                data={
                    "items_per_s": median,
                    "lost": lost,
                    "crashed": len(crashed),
                    "runs": items,
                },
            )
        )
    return results


TRACKING_INPUT = {"prompt": "bench tracking", "width": 64, "height": 64, "seed": 1}


def tracking(*, owner: User, scratch: Path, rounds: int, item_ms: int = 100) -> list[Result]:
    """A 4 x 4 pipeline of `item_ms` items through a real Celery worker (2 processes,
    Redis broker): the project's `render_item` (claim, render, store, count, finalise)
    against `bare_item` (the same render and store, no tracking), round by round. The
    statements come from running `item_render` in-process on a third generation."""
    parameters = {**TRACKING_INPUT, "delay_ms": item_ms}
    done = redis.Redis.from_url(_broker_url())
    bare_s: list[float] = []
    tracked_s: list[float] = []
    statuses: list[str] = []
    with _bench_worker(scratch, done) as worker:
        for round_number in range(rounds + 1):  # the first round warms the worker up
            bare = _run_on_worker(worker, done, _bare_messages(owner, parameters))
            generation_id, messages = _tracked_messages(owner, parameters)
            tracked = _run_on_worker(worker, done, messages)
            statuses.append(Generation.objects.get(id=generation_id).status)
            if round_number:
                bare_s.append(bare)
                tracked_s.append(tracked)
    per_item = _statements_per_item(owner, parameters)
    bare_median, tracked_median = statistics.median(bare_s), statistics.median(tracked_s)
    overhead = (tracked_median - bare_median) / bare_median
    typical = int(statistics.median(per_item))
    completed = all(status == "completed" for status in statuses)
    return [
        Result(
            section=f"Tracking overhead (4 x 4 items of {item_ms} ms, Celery worker x 2)",
            name="render_item vs bare Celery (render and store only)",
            target="<= 5% slower than bare; <= 2 statements added per item",
            measured=f"{tracked_median:.3f} s (median of {rounds})",
            baseline=f"{bare_median:.3f} s",
            ratio=f"{overhead * 100:+.1f}%",
            queries=f"{typical} per item (max {max(per_item)}, the last item)",
            met=overhead <= 0.05 and typical <= 2 and completed,
            note="every tracked run ended completed"
            if completed
            else f"final statuses {sorted(set(statuses))}",
            data={
                "overhead": overhead,
                "statements_per_item": typical,
                "bare_s": bare_s,
                "tracked_s": tracked_s,
            },
        )
    ]


def _broker_url() -> str:
    """The benchmark's Redis database: the worker's broker and its list of finished tasks."""
    return os.environ["CELERY_BROKER_URL"]


@contextmanager
def _bench_worker(scratch: Path, done: redis.Redis) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker with 2 processes on the benchmark's database and Redis database,
    storing to local files under `scratch`."""
    done.flushdb()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"GENVAULT_VAR_DIR": str(scratch / "worker"), "BENCH_DONE_URL": _broker_url()})
    command = [sys.executable, "-m", "celery", "-A", "tests.bench.worker_app", "worker"]
    command += ["--concurrency", "2", "--without-gossip", "--without-mingle", "-l", "info"]
    worker = subprocess.Popen(command, cwd=database.ROOT, env=env, start_new_session=True)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


Message = tuple[str, list[Any]]


def _run_on_worker(
    worker: subprocess.Popen[bytes], done: redis.Redis, messages: list[Message]
) -> float:
    """Send the messages and wait until the worker has run them all; the seconds taken."""
    done.delete(worker_app.DONE_LIST)
    started = time.perf_counter()
    for task_name, args in messages:
        app.send_task(task_name, args=args)
    finished = 0
    while finished < len(messages):
        if worker.poll() is not None:
            raise RuntimeError(f"the benchmark's Celery worker exited ({worker.returncode})")
        if time.perf_counter() - started > 120:
            raise RuntimeError("the benchmark's Celery worker did not finish its tasks")
        if done.blpop([worker_app.DONE_LIST], timeout=1) is not None:
            finished += 1
    return time.perf_counter() - started


def _tracked_messages(owner: User, parameters: dict[str, Any]) -> tuple[uuid.UUID, list[Message]]:
    generation_id, item_ids = _generation_with_queued_items(
        owner, 16, kind="image", parameters=parameters
    )
    return generation_id, [(RENDER_ITEM, [item_id]) for item_id in item_ids]


def _bare_messages(owner: User, parameters: dict[str, Any]) -> list[Message]:
    """The same 16 items, described in full in the message (nothing is read back)."""
    generation_id = str(uuid.uuid4())
    return [
        (
            worker_app.BARE_ITEM,
            [
                {
                    "id": str(uuid.uuid4()),
                    "generation_id": generation_id,
                    "variant_id": str(uuid.uuid4()),
                    "number": number,
                    "prompt": "",
                    "variant_label": label,
                    "kind": "image",
                    "provider": "local",
                    "provider_model": "local-render-1",
                    "parameters": parameters,
                }
            ],
        )
        for label in LABELS
        for number in range(1, 5)
    ]


def _statements_per_item(owner: User, parameters: dict[str, Any]) -> list[int]:
    _, item_ids = _generation_with_queued_items(owner, 16, kind="image", parameters=parameters)
    counts = []
    for item_id in item_ids:
        with measure.captured() as context:
            item_render(item_id=uuid.UUID(item_id), claim_token="bench-statements")
        counts.append(len(context.captured_queries))
    return counts


def purge(*, rows: int) -> list[Result]:
    """Expire the oldest generations holding about `rows` rows (22 each: the generation,
    4 variants, 16 items, its metadata) and time their purge."""
    expire = max(rows // 22, 1)
    cutoff = trash_cutoff()
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE generations_generation SET deleted_at = %s - interval '1 day'
               WHERE id IN (SELECT id FROM generations_generation ORDER BY created_at
               LIMIT %s)""",
            [cutoff, expire],
        )
        cursor.execute("ANALYZE generations_generation")
    rows = expire * 22
    batches: list[float] = []
    open_batch: list[float] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        begun = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            ended = time.perf_counter()
            if sql.startswith('UPDATE "generations_generation" SET "parent_id"'):
                open_batch[:] = [begun]
            elif sql.startswith('DELETE FROM "generations_generation"') and open_batch:
                batches.append((ended - open_batch[0]) * 1000)
                open_batch.clear()

    storage_s = 0.0

    def timed_storage(function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal storage_s
            begun = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                storage_s += time.perf_counter() - begun

        return call

    before = measure.rss_kib()
    measure.reset_peak_rss()
    started = time.perf_counter()
    with (
        connection.execute_wrapper(watch),
        mock.patch.object(purging, "objects_delete", timed_storage(objects_delete)),
        mock.patch.object(purging, "prefix_delete", timed_storage(prefix_delete)),
    ):
        purged = generations_purge_expired()
    seconds = time.perf_counter() - started
    database_s = seconds - storage_s
    growth_mb = (measure.rss_kib("VmHWM") - before) / 1024
    longest = max(batches) if batches else 0.0
    per_million = seconds * 1_000_000 / rows
    return [
        Result(
            section="Purge of expired generations",
            name=f"{purged} generations ({rows} rows with their items)",
            target="1M rows in <= 60 s; no batch lock > 1 s; flat memory",
            measured=f"{seconds:.1f} s ({rows / seconds:.0f} rows/s)",
            baseline="",
            ratio=f"~{per_million:.0f} s per 1M rows",
            queries=f"{len(batches)} batches",
            plan=f"longest batch transaction {ms(longest)}",
            met=per_million <= 60 and longest <= 1000 and growth_mb <= 64,
            note=f"storage requests {storage_s:.1f} s (to moto's S3 server), database "
            f"{database_s:.1f} s ({rows / database_s:.0f} rows/s); peak RSS growth "
            f"{growth_mb:.1f} MB",
            data={
                "seconds": seconds,
                "purged": purged,
                "longest_batch_ms": longest,
                "growth_mb": growth_mb,
                "storage_s": storage_s,
                "database_s": database_s,
            },
        )
    ]
