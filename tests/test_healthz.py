import threading
import time

import pytest
from kombu.exceptions import OperationalError

from config import health
from tests.tiers import skip_or_fail

pytestmark = pytest.mark.django_db


def test_healthy_system_answers_200(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
        "down": [],
    }


def test_unreachable_broker_is_named(client, monkeypatch):
    def broker_down() -> None:
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setitem(health.CHECKS, "broker", broker_down)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["broker"]
    assert "Connection refused" in body["checks"]["broker"]


@pytest.mark.slow  # the broker check waits out its one retry
def test_real_broker_check_fails_against_a_closed_port():
    with pytest.raises(OperationalError):
        health._check_broker("redis://127.0.0.1:1/0")


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405


def test_a_hung_check_answers_503_within_the_deadline(client, monkeypatch):
    """Storage that never answers (a frozen S3 server) must not hang the health check."""
    released = threading.Event()

    def storage_hangs() -> None:
        released.wait(timeout=30)

    monkeypatch.setitem(health.CHECKS, "storage", storage_hangs)
    started = time.monotonic()
    try:
        response = client.get("/healthz")
    finally:
        released.set()

    assert time.monotonic() - started < 3
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["storage"]
    assert "no answer within" in body["checks"]["storage"]
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"


def test_s3_requests_have_timeouts_and_retries(settings):
    from django.core.files.storage import storages

    storage = storages["default"]
    config = getattr(storage, "client_config", None)
    if config is None:
        skip_or_fail("media storage is local in this tier: no S3 client to configure")
    assert config.connect_timeout <= 10
    assert config.read_timeout <= 60
    assert config.retries["mode"] == "standard"
