import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.celery import app
from generations.models import Generation
from generations.states import FINAL_GENERATION_STATUSES
from tests.e2e.workers import Worker

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def worker_log_dir(request):
    """Worker logs are kept under test-artifacts/workers/<test name>/ for diagnosis."""
    directory = ARTIFACTS / "workers" / request.node.name
    directory.mkdir(parents=True, exist_ok=True)
    for old_log in directory.glob("*.log"):
        old_log.unlink()
    return directory


@pytest.fixture
def start_worker(transactional_db, worker_log_dir) -> Iterator[Callable[..., Worker]]:
    """Start real worker processes against the test database; stopped after the test."""
    app.control.purge()
    workers: list[Worker] = []

    def start(name: str = "w1", **options) -> Worker:
        worker = Worker(name=name, log_dir=worker_log_dir, **options)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.control.purge()


def wait_for(condition: Callable[[], bool], *, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for: {message}")


def wait_until_ended(generation: Generation, *, timeout: float = 120) -> Generation:
    def ended() -> bool:
        generation.refresh_from_db()
        return generation.status in FINAL_GENERATION_STATUSES

    wait_for(ended, timeout=timeout, message=f"generation {generation.id} to end")
    return generation
