"""docs/performance.md: the machine, the versions, the method and one table per section."""

import datetime
import platform
import subprocess
from itertools import groupby
from pathlib import Path
from typing import Any

import django
from django.db import connection

from tests.bench.measure import Result

METHOD = """\
## Method

- **Data**: `python -m tests.bench --scale S` seeds 1M x S generations (4 variants and 16
  items each, one metadata row) into its own database `genvault_bench`, copied from a kept
  template `genvault_bench_template_<S>` (seeded once with `INSERT ... SELECT
  generate_series`, keys and indexes dropped during the load and rebuilt after it, then
  `VACUUM ANALYZE`). Five heavy users own 5%, 3%, 2%, 1.5% and 1% of the rows; 90% are
  completed, 7% failed, 3% processing; prompts come from a 120-word vocabulary with
  `zephyrine` planted in 0.01% of rows and `sunset` in 10%.
- **Timing**: every measurement runs beside its naive baseline in the same process,
  interleaved (A, B, A, B ...) after two warm-up calls each; figures are median / p95 in
  ms. Queries are counted with `CaptureQueriesContext`; rows and buffers come from
  `EXPLAIN (ANALYZE, BUFFERS)` of the request's main statement (rows out, rows read by the
  scans, shared buffers hit + read). Every COUNT statement a request runs is checked with
  `EXPLAIN ANALYZE`: one that aggregates more than 10,000 rows fails the row.
- **Baselines**: the API against a stock DRF `PageNumberPagination` viewset with a plain
  `ModelSerializer` and no joins (`tests/bench/baselines.py`); admin changelists against a
  default `ModelAdmin` (`list_filter = ["status"]`) on a second admin site; search against
  the same request with `SET enable_bitmapscan = off` (GIN trigram indexes are only read
  through bitmap scans, so this is `icontains` as if the trigram indexes did not exist);
  stats against one COUNT per status and per kind; counters against `get()`/`save()` and
  `select_for_update()` read-modify-write; storage against
  `storage.save(ContentFile(f.read()))` and a thumbnail decoded from bytes read whole.
- **Counters**: forked worker processes, each with its own connection, claim and end
  items of one generation with dummy facts: the project's `item_claim` + `item_complete`
  (one statement each) against a naive ORM claim (a guarded update, then the item loaded
  with its variant and generation) followed by `get()`/`save()` or `select_for_update()`
  read-modify-write counters. The strategies alternate run by run. Lost increments =
  completed item rows minus the generation's `completed_items`, plus the same for the
  variants' sums.
- **Tracking overhead**: a real Celery worker (`celery -A tests.bench.worker_app worker
  --concurrency 2`, Redis broker, local file storage) runs 16 items (4 variants x 4) of
  an image generation whose provider waits 100 ms: the project's `render_item` task
  (claim, render, store, count, decide) against `bare_item`, the same render and store
  with no database at all, round by round after a warm-up round; the time is from the
  first message sent to the last task finished (reported by a `task_postrun` signal).
  Statements per item: everything `item_render` runs, captured in-process.
- **Purge**: the oldest generations holding a million rows (a tenth of the data set at
  smaller scales) are put past retention and purged; moto's S3 server runs in a process
  of its own, and the time spent in storage requests is reported apart from the rest.
- **Memory**: peak RSS growth (VmHWM reset with `/proc/self/clear_refs` just before the
  operation) of a fresh child process for storage and thumbnails; of the bench process
  for the purge.
"""


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    redis_version = _command("redis-cli", "-h", "127.0.0.1", "info", "server")
    redis_version = next(
        (
            line.split(":", 1)[1].strip()
            for line in redis_version.splitlines()
            if line.startswith("redis_version:")
        ),
        "unknown",
    )
    return {
        "CPU": f"{cpu} ({_command('nproc')} cores)",
        "Memory": memory,
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "PostgreSQL": postgres,
        "Redis": redis_version,
    }


NOTES_HEADING = "## Findings and likely fixes"


def kept_notes(path: Path) -> str:
    """The hand-written findings of the previous report, kept across runs."""
    if not path.exists():
        return ""
    text = path.read_text()
    start = text.find(NOTES_HEADING)
    return text[start:] if start >= 0 else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    results: list[Result], *, scale: float, sizes: dict[str, int], timings: dict[str, Any]
) -> str:
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m tests.bench`); do not edit the tables by hand.",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Scale: {scale:g} ({sizes['generations']:,} generations, "
        f"{4 * sizes['generations']:,} variants, {16 * sizes['generations']:,} items)",
    ]
    lines += [f"- {key}: {value}" for key, value in machine().items()]
    setup = ", ".join(f"{key} {value:.1f} s" for key, value in timings.items())
    lines += [f"- Set-up: {setup}", "", METHOD]
    met = sum(1 for result in results if result.met)
    missed = [result for result in results if result.met is False]
    lines += [f"**{met} met, {len(missed)} missed.**", ""]
    for section, rows in groupby(results, key=lambda result: result.section):
        lines += [
            f"## {section}",
            "",
            "| Measurement | Target | Measured (median / p95) | Baseline | Ratio | Queries "
            "| Rows / buffers | Verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in rows:
            verdict = row.verdict + (f": {row.note}" if row.note else "")
            cells = [
                row.name,
                row.target,
                row.measured,
                row.baseline,
                row.ratio,
                row.queries,
                row.plan,
                verdict,
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def stdout_summary(results: list[Result]) -> str:
    lines = []
    for row in results:
        lines.append(
            f"[{row.verdict:>6}] {row.section}: {row.name}: {row.measured}"
            + (f" (baseline {row.baseline}, {row.ratio})" if row.baseline else "")
            + (f" [{row.note}]" if row.note else "")
        )
    return "\n".join(lines)
