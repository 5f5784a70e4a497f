import pytest
from rest_framework.test import APIClient

from generations import dispatch, pipeline, services


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Task messages that would reach the broker; these tests drive the pipeline in-process."""
    calls = []
    monkeypatch.setattr(dispatch, "_send", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def other_api(other_user):
    client = APIClient()
    client.force_authenticate(other_user)
    return client


def run_in_process(generation):
    """Do what the workers would: the stages, then every queued item."""
    for item_id in pipeline.generation_prepare(generation_id=generation.id):
        pipeline.item_render(item_id=item_id, claim_token=f"test-{item_id}")
    generation.refresh_from_db()
    return generation


def make_images(owner, *, run=True, **input_overrides):
    """A small image generation (two variants of one 64x64 image), run unless run=False."""
    generation = services.generation_create(
        owner=owner,
        kind="image",
        input={
            "prompt": "A red kite over the dunes",
            "variants": ["a", "b"],
            "width": 64,
            "height": 64,
            **input_overrides,
        },
    )
    return run_in_process(generation) if run else generation


@pytest.fixture
def completed(owner):
    return make_images(owner)
