import pytest

from generations import dispatch
from generations.providers.local import LocalProvider


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Every task message that would reach the broker, as (task name, id, countdown).
    No worker runs in these tests: they drive the pipeline by calling it directly."""
    calls = []

    def record(name, object_id, countdown=None):
        calls.append((name, object_id, countdown))

    monkeypatch.setattr(dispatch, "_send", record)
    return calls


@pytest.fixture
def produced(monkeypatch):
    """The (variant label, item number) of every item the provider is asked for; the
    provider still produces it."""
    calls = []
    original = LocalProvider.produce

    def produce(self, request):
        calls.append((request.variant_label, request.number))
        return original(self, request)

    monkeypatch.setattr(LocalProvider, "produce", produce)
    return calls
