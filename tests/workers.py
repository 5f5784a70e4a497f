"""Real Celery worker processes for end-to-end tests, pointed at the test database, the
test broker and the test bucket."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connection

from generations.models import Generation
from generations.states import FINAL_GENERATION_STATUSES
from tests.helpers import ROOT
from tests.history_checker import assert_history_holds


def test_database_url() -> str:
    """DATABASE_URL of the database the tests run against (pytest-django's test copy)."""
    settings = connection.settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] or "postgres"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


class Worker:
    """One `celery worker` process group; stop() ends it gracefully, kill() with SIGKILL."""

    def __init__(
        self,
        *,
        name: str,
        log_dir: Path,
        concurrency: int = 2,
        beat: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--hostname",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            # The work queue and recovery's own (production runs them in two processes).
            "--queues",
            "genvault,genvault.recovery",
        ]
        if beat:
            command += ["--beat", "--schedule", str(log_dir / f"beat-{name}")]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": test_database_url(),
                "DATABASE_CONN_MAX_AGE": "0",
                "SOURCE_FETCH_ALLOW_LOOPBACK": "1",
                "ITEM_RETRY_BACKOFF_SECONDS": "1",
                **(env or {}),
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Worker {self.name} exited:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"Worker {self.name} did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]

    def child_pids(self) -> list[int]:
        result = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in result.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children, no cleanup at all."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 60) -> None:
        """SIGTERM the main process alone, as a deployment stops a worker: a warm shutdown
        that lets the running tasks finish."""
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=timeout)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


def wait_for(condition: Callable[[], bool], *, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for: {message}")


def wait_until_ended(generation: Generation, *, timeout: float = 120) -> Generation:
    """Wait for `generation` to end, then check that its record holds (the history
    checker): whatever the test did to the workers, nothing may be lost or left over."""

    def ended() -> bool:
        generation.refresh_from_db()
        return generation.status in FINAL_GENERATION_STATUSES

    wait_for(ended, timeout=timeout, message=f"generation {generation.id} to end")
    assert_history_holds(generation)
    return generation
