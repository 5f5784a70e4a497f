"""Tests for `generations.pipeline.lifecycle`: claiming items, counting each ending once,
retrying with backoff, and recovering items from lost workers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations.errors import ErrorCode, GenerationError
from generations.models import Attempt, Item, Variant
from generations.pipeline import lifecycle
from generations.pipeline.lifecycle import (
    item_claim,
    item_complete,
    item_fail,
    item_heartbeat,
    item_recover_lost,
    item_stop_cancelled,
    retry_delay,
)
from generations.pipeline.statements import counts_in_one_statement
from generations.services import generation_cancel
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline.claims import REJECTED, TIMEOUT, complete, fail, items_in_order
from generations.tests.pipeline_helpers import (
    ITEM_COST,
    assert_counters_match_items,
    item_result,
    processing_video,
)

pytestmark = pytest.mark.django_db


# Claiming --------------------------------------------------------------------------------


def test_claim_takes_a_queued_item(owner):
    generation = processing_video(owner)
    item = items_in_order(generation)[0]

    with CaptureQueriesContext(connection) as statements:
        claimed = item_claim(item_id=item.id, claim_token="delivery-1")

    if counts_in_one_statement():
        assert len(statements) == 1
    assert (claimed.id, claimed.generation_id, claimed.variant_id) == (
        item.id,
        generation.id,
        item.variant_id,
    )
    assert (claimed.number, claimed.prompt, claimed.attempts) == (1, item.prompt, 1)
    assert (claimed.variant_label, claimed.kind, claimed.provider) == ("soft", "video_ad", "local")
    assert claimed.provider_model == generation.provider_model
    assert claimed.parameters == generation.input
    assert claimed.generation_status == GenerationStatus.PROCESSING
    item.refresh_from_db()
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "delivery-1"
    assert item.attempts == 1
    assert item.started_at is not None


def test_claim_is_exclusive(owner):
    item = items_in_order(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="delivery-1")

    assert item_claim(item_id=item.id, claim_token="delivery-2") is None

    item.refresh_from_db()
    assert item.claim_token == "delivery-1"
    assert item.attempts == 1


def test_same_token_can_reclaim_an_item_whose_worker_went_silent(owner, settings):
    item = items_in_order(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="delivery-1")
    _age(item, settings.ITEM_LEASE_SECONDS + 1)
    first_started_at = Item.objects.get(id=item.id).started_at

    again = item_claim(item_id=item.id, claim_token="delivery-1")

    assert again is not None
    assert again.attempts == 2
    item.refresh_from_db()
    assert item.status == ItemStatus.PROCESSING
    assert item.started_at >= first_started_at


def test_a_copy_of_the_message_gets_nothing_while_its_worker_is_alive(owner):
    """A duplicate delivery must not render the item a second time in parallel."""
    item = items_in_order(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="delivery-1")

    assert item_claim(item_id=item.id, claim_token="delivery-1") is None

    item.refresh_from_db()
    assert item.attempts == 1


def test_a_heartbeat_renews_the_lease_and_reads_the_generation(owner, settings):
    generation = processing_video(owner)
    item = items_in_order(generation)[0]
    item_claim(item_id=item.id, claim_token="delivery-1")
    _age(item, settings.ITEM_LEASE_SECONDS + 1)

    assert item_heartbeat(item_id=item.id, claim_token="delivery-1") == "processing"

    # Alive again: recovery leaves it, and a copy of its message gets nothing.
    lease_start = timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS)
    assert item_recover_lost(item_id=item.id, silent_since=lease_start) is False
    assert item_claim(item_id=item.id, claim_token="delivery-1") is None
    assert item_heartbeat(item_id=item.id, claim_token="another") is None


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_ended_item_cannot_be_claimed(owner, end):
    generation = processing_video(owner)
    item = items_in_order(generation)[0]
    if end == "complete":
        complete(item)
    elif end == "fail":
        fail(item)
    else:
        generation_cancel(generation=generation)

    assert item_claim(item_id=item.id, claim_token="w1") is None
    assert item_claim(item_id=item.id, claim_token="w2") is None


# Counting once ---------------------------------------------------------------------------


def test_complete_is_counted_once(owner):
    generation = processing_video(owner)
    item = complete(items_in_order(generation)[0])

    assert not item_complete(item=item, claim_token="w1", result=item_result(item))

    generation.refresh_from_db()
    assert generation.completed_items == 1
    assert generation.actual_cost == ITEM_COST
    variant = Variant.objects.get(id=item.variant_id)
    assert variant.completed_items == 1
    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED
    assert item.asset_key.endswith("/soft/scene_1.mp4")
    assert (item.width, item.height, item.duration_seconds) == (160, 90, 1.0)
    assert item.completed_at is not None
    assert_counters_match_items(generation)


def test_ending_an_item_is_one_statement_on_postgresql(owner, counting):
    generation = processing_video(owner)
    claimed = item_claim(item_id=items_in_order(generation)[0].id, claim_token="w1")

    with CaptureQueriesContext(connection) as statements:
        assert item_complete(item=claimed, claim_token="w1", result=item_result(claimed))

    if counting == "one statement":
        assert len(statements) == 1
    generation.refresh_from_db()
    assert (generation.completed_items, generation.actual_cost) == (1, ITEM_COST)
    assert Variant.objects.get(id=claimed.variant_id).completed_items == 1
    assert_counters_match_items(generation)


def test_complete_by_another_delivery_is_not_counted(owner):
    generation = processing_video(owner)
    item = item_claim(item_id=items_in_order(generation)[0].id, claim_token="w1")

    assert not item_complete(item=item, claim_token="w2", result=item_result(item))

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    generation.refresh_from_db()
    assert generation.completed_items == 0


def test_permanent_failure_is_counted_once(owner):
    generation = processing_video(owner)
    item = items_in_order(generation)[0]
    claimed = item_claim(item_id=item.id, claim_token="w1")

    assert item_fail(item=claimed, claim_token="w1", error=REJECTED) is None
    assert item_fail(item=claimed, claim_token="w1", error=REJECTED) is None

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error_code == ErrorCode.PROVIDER_REJECTED
    assert item.error_message == REJECTED.message
    assert item.completed_at is not None
    generation.refresh_from_db()
    assert generation.failed_items == 1
    assert_counters_match_items(generation)


def test_stop_cancelled_by_another_delivery_is_not_counted(owner):
    generation = processing_video(owner)
    item = item_claim(item_id=items_in_order(generation)[0].id, claim_token="w1")
    generation_cancel(generation=generation)

    item_stop_cancelled(item=item, claim_token="w2")

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    assert_counters_match_items(generation)


# Unreachable storage is waited out for a time instead (see "Storage outages" below).
@pytest.mark.parametrize(
    "error", [TIMEOUT, GenerationError(ErrorCode.PROVIDER_ERROR, "The provider failed.")]
)
def test_retryable_error_requeues_until_attempts_run_out(owner, settings, error):
    settings.ITEM_MAX_ATTEMPTS = 3
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    generation = processing_video(owner)
    item = items_in_order(generation)[0]

    delays = []
    for attempt in (1, 2):
        claimed = item_claim(item_id=item.id, claim_token=f"delivery-{attempt}")
        assert claimed.attempts == attempt
        delays.append(item_fail(item=claimed, claim_token=f"delivery-{attempt}", error=error))
        item.refresh_from_db()
        assert item.status == ItemStatus.QUEUED
        assert item.claim_token == ""
        assert item.error_code == error.code
        assert item.completed_at is None
        generation.refresh_from_db()
        assert generation.failed_items == 0

    assert 1.6 <= delays[0] <= 2.4
    assert 3.2 <= delays[1] <= 4.8

    claimed = item_claim(item_id=item.id, claim_token="delivery-3")
    assert item_fail(item=claimed, claim_token="delivery-3", error=error) is None

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.attempts == 3
    assert item.error_code == error.code
    generation.refresh_from_db()
    assert generation.failed_items == 1
    assert_counters_match_items(generation)


def test_non_retryable_error_fails_at_the_first_attempt(owner, settings):
    settings.ITEM_MAX_ATTEMPTS = 3
    generation = processing_video(owner)
    item = items_in_order(generation)[0]

    assert fail(item, error=GenerationError(ErrorCode.INTERNAL, "Unexpected error.")) is None

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.attempts == 1


def test_retryable_error_of_a_taken_item_is_ignored(owner):
    generation = processing_video(owner)
    item = item_claim(item_id=items_in_order(generation)[0].id, claim_token="w1")

    assert item_fail(item=item, claim_token="w2", error=TIMEOUT) is None

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "w1"


# Lost workers ----------------------------------------------------------------------------


def _age(item, seconds):
    """The item started, and its worker last said it was alive, `seconds` ago."""
    moment = timezone.now() - timedelta(seconds=seconds)
    Item.objects.filter(id=item.id).update(started_at=moment, heartbeat_at=moment)


def test_lost_item_is_requeued_then_failed_as_worker_lost(owner, settings):
    settings.ITEM_MAX_ATTEMPTS = 3
    generation = processing_video(owner)
    item = items_in_order(generation)[0]

    for attempt in (1, 2):
        item_claim(item_id=item.id, claim_token=f"delivery-{attempt}")
        _age(item, 3600)
        before = timezone.now()
        assert item_recover_lost(item_id=item.id, silent_since=timezone.now()) is True
        item.refresh_from_db()
        assert item.status == ItemStatus.QUEUED
        assert item.claim_token == ""
        assert item.queued_at >= before
        assert item.attempts == attempt
        generation.refresh_from_db()
        assert generation.failed_items == 0

    item_claim(item_id=item.id, claim_token="delivery-3")
    _age(item, 3600)
    assert item_recover_lost(item_id=item.id, silent_since=timezone.now()) is False

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error_code == ErrorCode.WORKER_LOST
    assert "3 times" in item.error_message
    generation.refresh_from_db()
    assert generation.failed_items == 1
    assert_counters_match_items(generation)


def test_recent_item_is_not_recovered(owner, settings):
    generation = processing_video(owner)
    item = items_in_order(generation)[0]
    item_claim(item_id=item.id, claim_token="w1")

    lease_start = timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS)
    assert item_recover_lost(item_id=item.id, silent_since=lease_start) is False

    item.refresh_from_db()
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "w1"
    generation.refresh_from_db()
    assert generation.failed_items == 0


def test_lost_worker_finishing_late_is_not_counted(owner):
    generation = processing_video(owner)
    item = item_claim(item_id=items_in_order(generation)[0].id, claim_token="lost")
    _age(item, 3600)
    item_recover_lost(item_id=item.id, silent_since=timezone.now())
    item_claim(item_id=item.id, claim_token="new")

    assert not item_complete(item=item, claim_token="lost", result=item_result(item))

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "new"
    generation.refresh_from_db()
    assert generation.completed_items == 0


# Backoff ---------------------------------------------------------------------------------


def test_retry_delay_grows_exponentially(settings, monkeypatch):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    monkeypatch.setattr(lifecycle.random, "uniform", lambda low, high: 1.0)

    assert [retry_delay(attempts) for attempts in range(0, 6)] == [2, 2, 4, 8, 16, 32]


def test_retry_delay_is_capped(settings, monkeypatch):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    monkeypatch.setattr(lifecycle.random, "uniform", lambda low, high: 1.0)

    assert retry_delay(8) == 2 * 2**7
    assert retry_delay(9) == settings.ITEM_RETRY_MAX_DELAY_SECONDS
    assert retry_delay(60) == settings.ITEM_RETRY_MAX_DELAY_SECONDS


def test_retry_delay_has_bounded_jitter(settings):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    delays = {retry_delay(3) for _ in range(50)}

    assert all(8 * 0.8 <= delay <= 8 * 1.2 for delay in delays)
    assert len(delays) > 1


def test_retry_delay_never_exceeds_the_cap(settings, monkeypatch):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    monkeypatch.setattr(lifecycle.random, "uniform", lambda low, high: high)

    assert retry_delay(30) <= settings.ITEM_RETRY_MAX_DELAY_SECONDS


# Storage outages -----------------------------------------------------------------------


def test_an_outage_is_waited_out_whatever_the_attempts(owner, settings):
    settings.ITEM_MAX_ATTEMPTS = 2
    item = items_in_order(processing_video(owner))[0]
    outage = GenerationError(ErrorCode.STORAGE_UNAVAILABLE, "S3 did not answer.")

    delays = []
    for attempt in range(1, 6):
        claimed = item_claim(item_id=item.id, claim_token=f"w{attempt}")
        delays.append(item_fail(item=claimed, claim_token=f"w{attempt}", error=outage))

    item.refresh_from_db()
    assert item.status == ItemStatus.QUEUED
    assert item.attempts == 5
    assert all(0 < delay <= settings.STORAGE_RETRY_MAX_DELAY_SECONDS for delay in delays)
    first = item.storage_outage_since
    assert first is not None

    claimed = item_claim(item_id=item.id, claim_token="w6")
    assert item_complete(item=claimed, claim_token="w6", result=item_result(claimed))
    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED
    assert item.storage_outage_since is None


def test_a_longer_outage_fails_the_item_as_retryable(owner, settings):
    item = items_in_order(processing_video(owner))[0]
    outage = GenerationError(ErrorCode.STORAGE_UNAVAILABLE, "S3 did not answer.")
    claimed = item_claim(item_id=item.id, claim_token="w1")
    item_fail(item=claimed, claim_token="w1", error=outage)
    Item.objects.filter(id=item.id).update(
        storage_outage_since=timezone.now() - timedelta(seconds=settings.STORAGE_OUTAGE_SECONDS + 1)
    )

    claimed = item_claim(item_id=item.id, claim_token="w2")
    assert item_fail(item=claimed, claim_token="w2", error=outage) is None

    item.refresh_from_db()
    assert (item.status, item.error_code) == (ItemStatus.FAILED, ErrorCode.STORAGE_UNAVAILABLE)
    last = Attempt.objects.filter(item=item).order_by("-number").first()
    assert last.retryable is True
