"""The benchmark at a tiny scale, so that it cannot rot: it runs to the end, writes its
report, and its invariants hold. Benchmarks need PostgreSQL: in the SQLite tier this
skips, and under REQUIRE_SERVICES=1 a missing PostgreSQL already fails the run."""

import json
import os

import pytest

from tests.helpers import environ_without, run_python
from tests.tiers import TIER, skip_or_fail

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def bench_results(tmp_path):
    if TIER.database != "postgresql":
        skip_or_fail("benchmarks need PostgreSQL (SQLite is not a benchmark target)")
    report, raw = tmp_path / "performance.md", tmp_path / "results.json"
    completed = run_python(
        "-m",
        "tests.bench",
        "--scale",
        "0.001",
        "--quick",
        "--database",
        "genvault_bench_small",
        "--output",
        str(report),
        "--json",
        str(raw),
        env=environ_without(name for name in os.environ if name.startswith("AWS_")),
        timeout=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = {
        (row["section"].split(" (")[0], row["name"]): row for row in json.loads(raw.read_text())
    }
    return report.read_text(), results


def test_small_benchmark_reports_and_keeps_its_invariants(bench_results):
    report, results = bench_results
    assert "# Performance" in report
    assert "| Measurement | Target |" in report
    for section in ("History list API", "Prompt search", "Stats", "Progress counters"):
        assert section in report

    tracked = next(row for key, row in results.items() if key[1].startswith("one-statement"))
    assert tracked["data"]["lost"] == 0
    assert tracked["data"]["crashed"] == 0
    sizes = results[("History list API", "queries at page_size 10 and 100")]["data"]
    assert sizes["queries_10"] == sizes["queries_100"]
    for (section, _name), row in results.items():
        if section in ("History list API", "Admin changelists", "Prompt search"):
            assert row["data"].get("counts_over_cap", 0) == 0, row
