"""The benchmark at a tiny scale, so that it cannot rot: it runs to the end, writes its
report, and its invariants hold. Benchmarks need PostgreSQL: in the SQLite tier this
skips, and under REQUIRE_SERVICES=1 a missing PostgreSQL already fails the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import TIER, services_required

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.services


@pytest.fixture
def bench_results(tmp_path):
    if TIER.database != "postgresql":
        if services_required():
            pytest.fail("REQUIRE_SERVICES=1 but PostgreSQL is not reachable for the benchmark")
        pytest.skip("benchmarks need PostgreSQL (SQLite is not a benchmark target)")
    report, raw = tmp_path / "performance.md", tmp_path / "results.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    completed = subprocess.run(
        [
            sys.executable,
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
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
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
