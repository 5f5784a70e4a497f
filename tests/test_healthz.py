import pytest
from kombu.exceptions import OperationalError

from config import health

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
