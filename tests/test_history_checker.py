"""The history checker finds what it is meant to find: a record that holds passes, and
each kind of damage is named."""

import io

import pytest

from generations.models import Attempt, Event, Generation, Item
from generations.tests.pipeline_helpers import make_images
from storage.services import object_save
from tests.history_checker import check_history

pytestmark = pytest.mark.django_db


def test_a_record_that_holds_passes(owner):
    assert check_history(make_images(owner, variants=["a", "b"])) == []


def test_each_kind_of_damage_is_named(owner):
    generation = make_images(owner, variants=["a", "b"])
    Generation.objects.filter(id=generation.id).update(completed_items=1)
    Attempt.objects.filter(generation=generation).update(ended_at=None)
    Event.objects.filter(generation_id=generation.id, sequence=2).delete()
    item = Item.objects.filter(generation=generation).first()
    Item.objects.filter(id=item.id).update(status="processing")
    object_save(key=f"generations/{generation.id}/a/stray.png", content=io.BytesIO(b"x"))

    problems = "\n".join(check_history(generation))

    assert "counters" in problems
    assert "never closed" in problems
    assert "has gaps" in problems
    assert "still queued or processing" in problems
    assert "is named by no row" in problems
