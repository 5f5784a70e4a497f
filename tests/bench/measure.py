"""Timing, query capture, EXPLAIN and memory helpers shared by the measurements."""

import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

COUNT_CAP = 10_000


@dataclass
class Result:
    """One row of the report."""

    section: str
    name: str
    target: str
    measured: str
    baseline: str = ""
    ratio: str = ""
    queries: str = ""
    plan: str = ""
    met: bool | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "info"
        return "met" if self.met else "MISSED"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * (len(ordered) - 1))))
    return ordered[rank]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p95": percentile(values, 0.95)}


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def interleave(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 2,
) -> tuple[list[float], list[float]]:
    """Time A, B, A, B ... so that drift in the machine's load hits both alike."""
    for _ in range(warmup):
        candidate()
        baseline()
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        a.append(timed(candidate))
        b.append(timed(baseline))
    return a, b


@contextmanager
def captured() -> Iterator[CaptureQueriesContext]:
    with CaptureQueriesContext(connection) as context:
        yield context


def statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def explain(sql: str) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of a captured statement: rows out, buffers touched,
    sequential scans of the generation or item tables, and the plan's node types."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        row = cursor.fetchone()
    plan_json = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    top = plan_json[0]["Plan"]
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(top)
    seq_scans = sorted(
        {
            node.get("Relation Name", "")
            for node in nodes
            if node["Node Type"] == "Seq Scan"
            and node.get("Relation Name", "").startswith("generations_")
        }
    )
    # Rows the plan's leaves produced: what the query had to read, not what it returned.
    scanned = sum(
        int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
        + int(node.get("Rows Removed by Filter", 0))
        for node in nodes
        if "Scan" in node["Node Type"]
    )
    return {
        "rows": int(top.get("Actual Rows", 0)),
        "rows_scanned": scanned,
        "buffers": int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0)),
        "seq_scans": seq_scans,
        "ms": float(plan_json[0].get("Execution Time", 0.0)),
        "nodes": sorted({node["Node Type"] for node in nodes}),
    }


def main_query(sqls: list[str], table: str = "generations_generation") -> str | None:
    """The page's main statement: the longest SELECT reading `table` (not a count)."""
    selects = [
        sql
        for sql in sqls
        if sql.lstrip().upper().startswith("SELECT")
        and f'FROM "{table}"' in sql
        and "COUNT(" not in sql.upper()[:40]
    ]
    return max(selects, key=len) if selects else None


_COUNT = re.compile(r"^\s*SELECT\s+COUNT\(", re.IGNORECASE)


def exact_counts_over_cap(sqls: list[str], cap: int = COUNT_CAP) -> list[tuple[int, str]]:
    """Every COUNT statement whose aggregate read more than `cap` rows (by EXPLAIN
    ANALYZE), with that row count."""
    violations = []
    for sql in sqls:
        if not _COUNT.match(sql):
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            row = cursor.fetchone()
        plan_json = row[0] if not isinstance(row[0], str) else json.loads(row[0])
        top = plan_json[0]["Plan"]
        children = top.get("Plans", [])
        counted = sum(
            int(child.get("Actual Rows", 0)) * int(child.get("Actual Loops", 1))
            for child in children
        )
        # A capped count reads at most cap + 1 rows by design.
        if counted > cap + 1:
            violations.append((counted, sql[:160]))
    return violations


def plan_text(plan: dict[str, Any] | None) -> str:
    if not plan:
        return ""
    seq = f", Seq Scan on {'/'.join(plan['seq_scans'])}" if plan["seq_scans"] else ""
    return f"{plan['rows']} rows out, {plan['rows_scanned']} read, {plan['buffers']} buffers{seq}"


def rss_kib(field_name: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux 4.0+: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")
