"""The event log: what happened to a generation, in order, numbered without gaps, written
with the change it records; and read as an outbox, in commit order."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from generations.events import Cursor, event_record, events_after
from generations.models import Event, Generation
from generations.pipeline.lifecycle import item_claim, item_stop_cancelled
from generations.purge import generations_purge_expired
from generations.services import (
    generation_cancel,
    generation_delete,
    generation_regenerate,
    generation_restore,
    generation_retry,
)
from generations.states import Actor, EventType
from generations.tests.factories import GenerationFactory
from generations.tests.pipeline.claims import TIMEOUT, fail, items_in_order
from generations.tests.pipeline_helpers import make_images, processing_video, run_pipeline
from tests.tiers import require_postgresql

pytestmark = pytest.mark.django_db


def _log(generation_id) -> list[str]:
    return list(
        Event.objects.filter(generation_id=generation_id)
        .order_by("sequence")
        .values_list("type", flat=True)
    )


def _assert_gapless(generation_id) -> None:
    sequences = list(
        Event.objects.filter(generation_id=generation_id)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, len(sequences) + 1))
    last = Generation.objects.filter(id=generation_id).values_list("last_event_sequence", flat=True)
    assert list(last) in ([], [len(sequences)])


def test_a_run_is_logged_from_creation_to_its_end(owner, counting):
    generation = make_images(owner, variants=["a", "b"])

    assert _log(generation.id) == [
        EventType.CREATED,
        EventType.DISPATCHED,
        EventType.STARTED,
        EventType.ITEM_STARTED,
        EventType.ITEM_COMPLETED,
        EventType.ITEM_STARTED,
        EventType.ITEM_COMPLETED,
        EventType.COMPLETED,
    ]
    _assert_gapless(generation.id)
    created = Event.objects.get(generation_id=generation.id, type=EventType.CREATED)
    assert (created.actor, created.actor_user, created.owner) == (Actor.USER, owner, owner)
    assert created.payload["total_items"] == 2
    item_event = Event.objects.filter(generation_id=generation.id, type=EventType.ITEM_STARTED)[0]
    assert item_event.actor == Actor.SYSTEM
    assert set(item_event.payload) >= {"item", "variant", "number", "attempt", "reason"}


def test_an_automatic_retry_is_logged(owner, counting):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=1)
    [item] = items_in_order(generation)

    assert fail(item, error=TIMEOUT) is not None

    retried = Event.objects.get(generation_id=generation.id, type=EventType.ITEM_RETRIED)
    assert retried.payload["error_code"] == "provider_timeout"
    assert retried.payload["reason"] == "automatic_retry"
    _assert_gapless(generation.id)


def test_a_failure_and_a_user_retry_are_logged(owner, counting):
    generation = make_images(owner, variants=["a", "b"], fail_items=["b:1"])
    assert generation.status == "partial_success"

    generation_retry(generation=generation, by=owner)
    run_pipeline(generation)

    log = _log(generation.id)
    assert log.count(EventType.ITEM_FAILED) == 1
    assert log[log.index(EventType.PARTIAL_SUCCESS) + 1 :][:2] == [
        EventType.RETRIED,
        EventType.DISPATCHED,
    ]
    assert log[-1] == EventType.COMPLETED
    failed = Event.objects.get(generation_id=generation.id, type=EventType.ITEM_FAILED)
    assert failed.payload["error_code"] == "provider_rejected"
    _assert_gapless(generation.id)


def test_a_cancel_is_requested_then_logged_with_the_stopped_items(owner):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=2)
    first, _ = items_in_order(generation)
    claimed = item_claim(item_id=first.id, claim_token="w1")

    generation_cancel(generation=generation, by=owner)
    item_stop_cancelled(item=claimed, claim_token="w1")

    assert _log(generation.id)[-4:] == [
        EventType.ITEM_STARTED,
        EventType.CANCEL_REQUESTED,
        EventType.ITEM_CANCELLED,
        EventType.CANCELLED,
    ]
    _assert_gapless(generation.id)


def test_staff_actions_say_staff_and_the_owners_say_user(owner, staff_user):
    generation = make_images(owner)

    generation_delete(generation=generation, by=staff_user)
    generation_restore(generation=generation)

    *_, deleted, restored = Event.objects.filter(generation_id=generation.id).order_by("sequence")
    assert (deleted.type, deleted.actor, deleted.actor_user) == (
        EventType.DELETED,
        Actor.STAFF,
        staff_user,
    )
    assert (restored.type, restored.actor, restored.actor_user) == (
        EventType.RESTORED,
        Actor.USER,
        owner,
    )


def test_a_regeneration_is_logged_on_its_parent(owner):
    parent = make_images(owner)

    child = generation_regenerate(generation=parent, owner=owner, by=owner)

    regenerated = Event.objects.get(generation_id=parent.id, type=EventType.REGENERATED)
    assert regenerated.payload == {"regeneration": str(child.id)}
    created = Event.objects.get(generation_id=child.id, type=EventType.CREATED)
    assert created.payload["parent"] == str(parent.id)


def test_the_log_outlives_the_purge(owner, settings):
    generation = make_images(owner)
    generation_delete(generation=generation, by=owner)
    Generation.objects.filter(id=generation.id).update(
        deleted_at=timezone.now() - timedelta(days=settings.TRASH_RETENTION_DAYS + 1)
    )

    assert generations_purge_expired() == 1

    assert not Generation.objects.filter(id=generation.id).exists()
    assert _log(generation.id)[-2:] == [EventType.DELETED, EventType.PURGED]
    _assert_gapless(generation.id)


def test_recording_for_a_generation_that_is_gone_is_an_error(owner):
    generation = GenerationFactory(owner=owner)
    Generation.objects.filter(id=generation.id).delete()

    with pytest.raises(Generation.DoesNotExist):
        event_record(generation.id, EventType.STARTED)


# The outbox --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_outbox_hands_out_every_event_once_in_order(owner):
    first = make_images(owner)
    second = make_images(owner)

    seen, cursor = [], Cursor()
    while batch := events_after(cursor, limit=3):
        seen.extend(batch)
        cursor = Cursor.after(batch[-1])

    assert [event.id for event in seen] == sorted({event.id for event in seen})
    assert {event.generation_id for event in seen} == {first.id, second.id}
    assert len(seen) == Event.objects.count()
    assert events_after(cursor) == []


@pytest.mark.django_db(transaction=True)
def test_the_outbox_waits_for_an_earlier_transaction_to_commit(owner):
    """An event whose id came first but whose transaction commits last is not skipped:
    nothing after it is handed out until it commits."""
    require_postgresql("the outbox orders concurrent writers by transaction id")
    early = GenerationFactory(owner=owner)
    late = GenerationFactory(owner=owner)
    recorded, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            event_record(early.id, EventType.STARTED)
            recorded.set()
            release.wait(timeout=10)
        connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert recorded.wait(timeout=10)
        event_record(late.id, EventType.STARTED)  # committed at once (autocommit)

        assert events_after(Cursor()) == []
    finally:
        release.set()
        writer.join(timeout=10)

    handed_out = [event.generation_id for event in events_after(Cursor())]
    assert handed_out == [early.id, late.id]
