"""Helpers shared across the test tree: the checkout's paths, signed-in clients, commands
run in a fresh interpreter with the environment a deployment would give them, and markers
given by folder or by name."""

import os
import subprocess
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.test import Client
from rest_framework.test import APIClient

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

SERVICE_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
"""The variables that point the settings at PostgreSQL, Redis and S3; without them a
fresh checkout runs on its embedded defaults."""


def environ_without(names: Iterable[str], **extra: str) -> dict[str, str]:
    """This process's environment without `names`, with `extra` on top."""
    dropped = set(names)
    return {
        **{name: value for name, value in os.environ.items() if name not in dropped},
        **extra,
    }


def run_python(
    *arguments: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python <arguments>` in a fresh interpreter at the checkout, its output captured;
    the caller checks the return code."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage(
    *arguments: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`manage.py <arguments>` in a fresh interpreter at the checkout, output captured."""
    return run_python("manage.py", *arguments, env=env, timeout=timeout)


def signed_in(user: "User") -> Client:
    """A Django test client with a session for `user`."""
    client = Client()
    client.force_login(user)
    return client


def api_client_for(user: "User") -> APIClient:
    """A DRF test client whose requests are authenticated as `user`."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def mark_tests(
    items: list[pytest.Item],
    marker: pytest.MarkDecorator,
    *,
    folder: Path,
    only: Collection[str] = (),
) -> None:
    """Give `marker` to the collected tests under `folder`: all of them, or with `only`,
    those named there as "<file relative to folder>::<function>" (every parametrization).
    A name that its collected file does not define is a usage error, not a silent no-op."""
    modules = {}
    for item in items:
        if not isinstance(item, pytest.Function) or not item.path.is_relative_to(folder):
            continue
        file = item.path.relative_to(folder).as_posix()
        modules[file] = item.module
        if not only or f"{file}::{item.originalname}" in only:
            item.add_marker(marker)
    for name in only:
        file, function = name.split("::")
        if file in modules and not hasattr(modules[file], function):
            raise pytest.UsageError(f"{folder / file} defines no {function} to mark {marker.name}")
