"""`python -m tests.bench --scale S`: seed or copy the reference data set, run every
measurement beside its baseline, write docs/performance.md and print a summary.

Django is imported only after DATABASE_URL points at the benchmark's own database.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from tests.bench import database, seed

BUCKET = "genvault-bench"
BROKER_URL = "redis://127.0.0.1:6379/14"
SECTIONS = ("api", "admin", "search", "stats", "counters", "tracking", "storage", "purge")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 1M generations")
    parser.add_argument("--database", default="genvault_bench")
    parser.add_argument("--output", type=Path, default=database.ROOT / "docs/performance.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--reseed", action="store_true", help="rebuild the template")
    parser.add_argument("--quick", action="store_true", help="few repeats (the test suite)")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    return parser.parse_args(argv)


def _start_s3_server() -> subprocess.Popen[bytes]:
    """moto's S3 server in a process of its own, so that its work is not counted in (or
    slowed by) the benchmark process's."""
    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto's S3 server did not start") from None
            time.sleep(0.1)
    os.environ.update(
        {
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "genvault-bench",
            "AWS_SECRET_ACCESS_KEY": "genvault-bench-secret",
            "AWS_S3_REGION_NAME": "us-east-1",
        }
    )
    boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_S3_ENDPOINT_URL"],
        aws_access_key_id="genvault-bench",
        aws_secret_access_key="genvault-bench-secret",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    return server


def _configure_environment(name: str, scratch: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database.database_url(name),
            "DATABASE_CONN_MAX_AGE": "600",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "API_READ_RATE": "1000000/min",
            # The tracking benchmark's worker; nothing else here sends tasks.
            "CELERY_BROKER_URL": BROKER_URL,
            "GENVAULT_VAR_DIR": scratch,
        }
    )


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    log = database.Log()
    started = time.monotonic()
    timings = database.prepare(name=args.database, scale=args.scale, reseed=args.reseed, log=log)
    scratch = tempfile.mkdtemp(prefix="genvault-bench-")
    _configure_environment(args.database, scratch)
    server = _start_s3_server() if "storage" in args.only or "purge" in args.only else None

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test.utils import override_settings

    from tests.bench import report, scenarios_http, scenarios_storage, scenarios_work
    from tests.bench.measure import Result

    override_settings(
        ROOT_URLCONF="tests.bench.urls",
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ).enable()
    scale = args.scale
    repeats = 5 if args.quick else 30
    ctx = scenarios_http.Context(
        heavy=User.objects.get(username=f"{seed.HEAVY_PREFIX}1"),
        staff=User.objects.get(username=seed.STAFF_USERNAME),
        repeats=repeats,
    )
    worker_owner = User.objects.get(username=seed.WORKER_USERNAME)
    sizes = seed.sizes(scale)
    results: list[Result] = []
    steps: list[tuple[str, Any]] = [
        ("api", lambda: scenarios_http.history_api(ctx)),
        ("admin", lambda: scenarios_http.admin_changelists(ctx)),
        ("search", lambda: scenarios_http.search(ctx)),
        ("stats", lambda: scenarios_http.stats(ctx)),
        (
            "counters",
            lambda: scenarios_work.counters(
                owner=worker_owner,
                workers=8 if scale >= 1 else 4 if scale >= 0.01 else 2,
                per_worker=max(50, int(2000 * min(1.0, scale * 5))),
                # 16,000 items a run at full scale: one run of each is minutes already.
                rounds=1 if args.quick or scale >= 1 else 3,
            ),
        ),
        (
            "tracking",
            lambda: scenarios_work.tracking(
                owner=worker_owner, scratch=Path(scratch), rounds=2 if args.quick else 7
            ),
        ),
        (
            "storage",
            lambda: scenarios_storage.storage(
                directory=Path(scratch),
                size=(16 if args.quick else max(64, int(1024 * scale))) * 1024 * 1024,
                repeats=1 if args.quick else 2,
            ),
        ),
        # The target's million rows, or a tenth of the data set when that is smaller.
        ("purge", lambda: scenarios_work.purge(rows=min(1_000_000, sizes["generations"] * 2))),
    ]
    try:
        for name, step in steps:
            if name not in args.only:
                continue
            phase = time.monotonic()
            try:
                produced = step()
            except Exception as exc:  # noqa: BLE001 (one broken step must not lose the rest)
                log(f"{name} failed: {exc!r}")
                traceback.print_exc()
                produced = [Result(name, "all", "", f"not measured: failed ({exc!r})", met=False)]
            results.extend(produced)
            log(f"{name}: {len(produced)} results in {time.monotonic() - phase:.1f} s")
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    timings["run_total_s"] = time.monotonic() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    notes = report.kept_notes(args.output)
    body = report.markdown(results, scale=scale, sizes=sizes, timings=timings)
    args.output.write_text(body + ("\n" + notes if notes else ""))
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**result.__dict__, "verdict": result.verdict} for result in results],
                default=str,
                indent=1,
            )
        )
    print(report.stdout_summary(results))
    log(f"report written to {args.output} ({timings['run_total_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
