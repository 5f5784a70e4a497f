"""Chooses the services the test run talks to, before Django reads its settings.

PostgreSQL, Redis and an S3 server (moto's, on loopback) are used when reachable. With
REQUIRE_SERVICES=1 a missing one ends the run; without it the run falls back to SQLite,
the file broker and local storage, and says so on its first line.
"""

import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"
TEST_BUCKET = "genvault-test"


@dataclass
class Tier:
    database: str = "sqlite"
    broker: str = "filesystem"
    storage: str = "local"
    missing: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"test tier: database={self.database} broker={self.broker} storage={self.storage}"
        if self.missing:
            text += f" (not reachable: {', '.join(self.missing)})"
        return text


TIER = Tier()
_moto_server = None
_scratch_dir: str | None = None


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for want of a service or tool, or fail it under REQUIRE_SERVICES=1,
    where every one of them was promised."""
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1: {reason}")
    pytest.skip(reason)


def require_postgresql(reason: str) -> None:
    """For a test of something only PostgreSQL does: skipped on the SQLite tier, and a
    failure there under REQUIRE_SERVICES=1 (which promises PostgreSQL)."""
    if TIER.database != "postgresql":
        skip_or_fail(f"needs PostgreSQL: {reason}")


def _postgres_reachable(url: str) -> str | None:
    import psycopg

    parts = urlsplit(url)
    try:
        with psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or None,
            dbname=parts.path.lstrip("/") or "postgres",
            connect_timeout=3,
        ):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {parts.hostname}:{parts.port}: {exc}".strip()


def _redis_reachable(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
        return None
    except redis.RedisError as exc:
        return f"Redis at {url}: {exc}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_s3_server() -> str | None:
    global _moto_server
    try:
        import boto3
        from moto.server import ThreadedMotoServer

        port = _free_port()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        _moto_server.start()
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(
            {
                "AWS_STORAGE_BUCKET_NAME": TEST_BUCKET,
                "AWS_S3_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "genvault-test",
                "AWS_SECRET_ACCESS_KEY": "genvault-test-secret",
                "AWS_S3_REGION_NAME": "us-east-1",
            }
        )
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="genvault-test",
            aws_secret_access_key="genvault-test-secret",
            region_name="us-east-1",
        ).create_bucket(Bucket=TEST_BUCKET)
        return None
    except Exception as exc:  # noqa: BLE001 (any start-up failure means "no S3 server")
        return f"S3 server (moto): {exc}"


def _choose_services() -> None:
    global _scratch_dir
    _scratch_dir = tempfile.mkdtemp(prefix="genvault-test-")
    os.environ.setdefault("GENVAULT_VAR_DIR", _scratch_dir)
    os.environ.setdefault("DJANGO_DEBUG", "1")

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    problem = _postgres_reachable(database_url)
    if problem is None:
        os.environ["DATABASE_URL"] = database_url
        TIER.database = "postgresql"
    else:
        os.environ.pop("DATABASE_URL", None)
        TIER.missing.append(problem)

    broker_url = os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL
    problem = _redis_reachable(broker_url)
    if problem is None:
        os.environ["CELERY_BROKER_URL"] = broker_url
        TIER.broker = "redis"
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
        TIER.missing.append(problem)

    if os.environ.get("TEST_S3", "1") == "0":
        TIER.missing.append("S3 server (disabled with TEST_S3=0)")
        return
    problem = _start_s3_server()
    if problem is None:
        TIER.storage = "s3"
    else:
        TIER.missing.append(problem)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    _choose_services()
    if TIER.missing and services_required():
        raise pytest.UsageError(
            "REQUIRE_SERVICES=1 but these services are not reachable:\n  "
            + "\n  ".join(TIER.missing)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Output is captured while initial conftests load, so the tier is announced here.
    print(TIER.describe(), flush=True)


def empty_test_bucket() -> None:
    """Delete every object in the test bucket (a no-op when S3 is not in use)."""
    if TIER.storage != "s3":
        return
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=TEST_BUCKET):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=TEST_BUCKET, Delete={"Objects": objects})


def pytest_report_header() -> list[str]:
    return [TIER.describe()]


def pytest_unconfigure() -> None:
    if _moto_server is not None:
        _moto_server.stop()
    if _scratch_dir is not None:
        shutil.rmtree(_scratch_dir, ignore_errors=True)
