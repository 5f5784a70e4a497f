"""The benchmark's own PostgreSQL databases: a seeded template per scale, and the working
copy `genvault_bench` made from it in seconds."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
# Never the test databases (`test`, `test_test`) or another engineer's.
FORBIDDEN = {"test", "test_test", "postgres", "template0", "template1"}


def server_url() -> str:
    """The server to use: BENCH_DATABASE_SERVER, else the server of a PostgreSQL
    DATABASE_URL, else the local default."""
    url = os.environ.get("BENCH_DATABASE_SERVER") or os.environ.get("DATABASE_URL") or ""
    if not url.startswith(("postgres://", "postgresql://")):
        url = DEFAULT_SERVER_URL
    return url


def database_url(name: str) -> str:
    parts = urlsplit(server_url())
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(database_url("postgres"), autocommit=True, connect_timeout=5)


def template_name(scale: float) -> str:
    return "genvault_bench_template_" + f"{scale:g}".replace(".", "_").replace("-", "_")


def exists(name: str) -> bool:
    with admin_connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def drop(name: str) -> None:
    if name in FORBIDDEN:
        raise ValueError(f"refusing to drop {name}")
    with admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create(name: str, *, template: str | None = None) -> None:
    if name in FORBIDDEN:
        raise ValueError(f"refusing to create {name}")
    drop(name)
    with admin_connect() as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            # FILE_COPY copies the files after one checkpoint: much faster than WAL_LOG for
            # a database of several GB.
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )


def rename(old: str, new: str) -> None:
    with admin_connect() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(old), sql.Identifier(new)
            )
        )


def migrate(name: str) -> None:
    """Build the schema with the project's own migrations, in a child process (this
    process's Django is not set up yet, and will point at another database)."""
    env = {**os.environ, "DATABASE_URL": database_url(name), "DATABASE_CONN_MAX_AGE": "0"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def prepare(*, name: str, scale: float, reseed: bool, log: "Log") -> dict[str, float]:
    """Make `name` a fresh copy of the seeded template for `scale`, seeding the template
    first when it does not exist (or when `reseed`). Returns the phases' durations."""
    from tests.bench import seed

    template = template_name(scale)
    timings: dict[str, float] = {}
    if reseed or not exists(template):
        building = template.replace("_template_", "_seeding_")
        started = time.monotonic()
        create(building)
        migrate(building)
        timings["migrate_s"] = time.monotonic() - started
        with psycopg.connect(database_url(building), autocommit=True) as conn:
            timings.update(seed.seed(conn, scale=scale, log=log))
        drop(template)
        rename(building, template)
    started = time.monotonic()
    create(name, template=template)
    timings["copy_from_template_s"] = time.monotonic() - started
    log(f"database {name} copied from {template} in {timings['copy_from_template_s']:.1f} s")
    # Migrations added since the template was seeded (new indexes, say) apply to the copy.
    started = time.monotonic()
    migrate(name)
    timings["migrate_copy_s"] = time.monotonic() - started
    return timings


class Log:
    def __call__(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
