"""Faults of the services under real workers, on private services started for the test
(never the machine's shared ones): what was lost must be nothing, which the history
checker asserts when the generation ends (`tests.workers.wait_until_ended`)."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generations.states import GenerationStatus, ItemStatus
from generations.tests.factories import UserFactory
from generations.tests.pipeline_helpers import make_images
from tests.tiers import skip_or_fail
from tests.workers import wait_for, wait_until_ended


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A `redis-server` of the test's own on a free loopback port, keeping nothing on
    disk: a restart loses every message, as a real crash of an unpersisted broker does."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self, *, down_seconds: float = 2.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed: the broker fault tests need their own")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_broker_restart_mid_run_loses_nothing(start_worker, private_redis):
    """The broker restarts, empty, while items run: the worker reconnects, recovery sends
    again what the broker lost, and the generation completes exactly."""
    broker = {"CELERY_BROKER_URL": private_redis.url}
    start_worker("steady", beat=True, env=broker)
    # Submitted through the suite's own broker, which no worker here reads: recovery on
    # the private broker picks it up as a lost dispatch.
    generation = make_images(
        UserFactory(), run=False, variants=["a", "b", "c", "d"], images_per_variant=2, delay_ms=1500
    )
    wait_for(
        lambda: generation.items.filter(status=ItemStatus.PROCESSING).exists(),
        timeout=120,
        message="an item to start",
    )

    private_redis.restart()

    wait_until_ended(generation, timeout=240)
    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.completed_items, generation.failed_items) == (8, 0)
