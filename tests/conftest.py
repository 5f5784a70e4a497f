from collections.abc import Callable, Iterator

import pytest

from config.celery import app
from tests.helpers import ARTIFACTS
from tests.workers import Worker


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
