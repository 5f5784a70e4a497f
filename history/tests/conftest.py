import pytest

from generations import dispatch

# Kept importable from here: several history test modules import them from this conftest.
from generations.tests.pipeline_helpers import make_images
from generations.tests.pipeline_helpers import run_pipeline as run_in_process
from tests.helpers import api_client_for

__all__ = ["make_images", "run_in_process"]


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Task messages that would reach the broker; these tests drive the pipeline in-process."""
    calls = []
    monkeypatch.setattr(dispatch, "_send", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def api(owner):
    return api_client_for(owner)


@pytest.fixture
def other_api(other_user):
    return api_client_for(other_user)


@pytest.fixture
def completed(owner):
    return make_images(owner)
