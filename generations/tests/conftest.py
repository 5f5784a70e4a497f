import pytest

from generations import dispatch


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Every task message that would reach the broker, as (task name, id, countdown).
    No worker runs in these tests: they drive the pipeline by calling it directly."""
    calls = []

    def record(name, object_id, countdown=None):
        calls.append((name, object_id, countdown))

    monkeypatch.setattr(dispatch, "_send", record)
    return calls
