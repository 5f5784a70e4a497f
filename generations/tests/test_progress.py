"""Tests for `generations.progress`: claiming items, counting them once, and deciding the
final status once, including under concurrent workers on PostgreSQL."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations import progress
from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.progress import (
    MAX_RETRY_DELAY_SECONDS,
    elapsed_seconds,
    finalise_if_ended,
    item_claim,
    item_complete,
    item_fail,
    item_recover_lost,
    item_stop_cancelled,
    retry_delay,
)
from generations.services import generation_cancel
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import (
    ITEM_COST,
    assert_counters_match_items,
    item_result,
    processing_video,
    variant_status_by_label,
    variant_statuses,
)

pytestmark = pytest.mark.django_db

REJECTED = GenerationError(ErrorCode.PROVIDER_REJECTED, "The provider refused it.")
TIMEOUT = GenerationError(ErrorCode.PROVIDER_TIMEOUT, "The provider did not answer.")


@pytest.fixture
def evaluations(monkeypatch):
    """The generation ids the final evaluation ran for, one entry per run."""
    calls = []
    original = progress.evaluation_of

    def evaluation_of(generation_id):
        calls.append(generation_id)
        return original(generation_id)

    monkeypatch.setattr(progress, "evaluation_of", evaluation_of)
    return calls


@pytest.fixture(params=["one statement", "in steps"])
def counting(request, monkeypatch):
    """Runs a test with each way of counting an ended item: one statement (PostgreSQL)
    and the portable transaction of three."""
    if request.param == "one statement" and connection.vendor != "postgresql":
        pytest.skip("counting in one statement needs PostgreSQL (UPDATE inside WITH)")
    if request.param == "in steps":
        monkeypatch.setattr(progress, "_counts_in_one_statement", lambda: False)
    return request.param


def _items(generation):
    return list(
        Item.objects.filter(generation=generation)
        .select_related("variant")
        .order_by("variant__position", "number")
    )


def _complete(item, delivery="w1"):
    claimed = item_claim(item_id=item.id, claim_token=delivery)
    assert claimed is not None
    assert item_complete(item=claimed, claim_token=delivery, result=item_result(claimed))
    return Item.objects.select_related("variant").get(id=claimed.id)


def _fail(item, delivery="w1", error=REJECTED):
    claimed = item_claim(item_id=item.id, claim_token=delivery)
    assert claimed is not None
    return item_fail(item=claimed, claim_token=delivery, error=error)


# Claiming --------------------------------------------------------------------------------


def test_claim_takes_a_queued_item(owner):
    generation = processing_video(owner)
    item = _items(generation)[0]

    with CaptureQueriesContext(connection) as statements:
        claimed = item_claim(item_id=item.id, claim_token="delivery-1")

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
    item = _items(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="delivery-1")

    assert item_claim(item_id=item.id, claim_token="delivery-2") is None

    item.refresh_from_db()
    assert item.claim_token == "delivery-1"
    assert item.attempts == 1


def test_same_token_can_reclaim_a_processing_item(owner):
    item = _items(processing_video(owner))[0]
    item_claim(item_id=item.id, claim_token="delivery-1")
    first_started_at = Item.objects.get(id=item.id).started_at

    again = item_claim(item_id=item.id, claim_token="delivery-1")

    assert again is not None
    assert again.attempts == 2
    item.refresh_from_db()
    assert item.status == ItemStatus.PROCESSING
    assert item.started_at >= first_started_at


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_ended_item_cannot_be_claimed(owner, end):
    generation = processing_video(owner)
    item = _items(generation)[0]
    if end == "complete":
        _complete(item)
    elif end == "fail":
        _fail(item)
    else:
        generation_cancel(generation=generation)

    assert item_claim(item_id=item.id, claim_token="w1") is None
    assert item_claim(item_id=item.id, claim_token="w2") is None


# Counting once ---------------------------------------------------------------------------


def test_complete_is_counted_once(owner):
    generation = processing_video(owner)
    item = _complete(_items(generation)[0])

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


def test_ending_a_item_is_one_statement_on_postgresql(owner, counting):
    generation = processing_video(owner)
    claimed = item_claim(item_id=_items(generation)[0].id, claim_token="w1")

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
    item = item_claim(item_id=_items(generation)[0].id, claim_token="w1")

    assert not item_complete(item=item, claim_token="w2", result=item_result(item))

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    generation.refresh_from_db()
    assert generation.completed_items == 0


def test_permanent_failure_is_counted_once(owner):
    generation = processing_video(owner)
    item = _items(generation)[0]
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
    item = item_claim(item_id=_items(generation)[0].id, claim_token="w1")
    generation_cancel(generation=generation)

    item_stop_cancelled(item=item, claim_token="w2")

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    assert_counters_match_items(generation)


@pytest.mark.parametrize(
    "error", [TIMEOUT, GenerationError(ErrorCode.STORAGE_UNAVAILABLE, "S3 is down.")]
)
def test_retryable_error_requeues_until_attempts_run_out(owner, settings, error):
    settings.ITEM_MAX_ATTEMPTS = 3
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    generation = processing_video(owner)
    item = _items(generation)[0]

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
    item = _items(generation)[0]

    assert _fail(item, error=GenerationError(ErrorCode.INTERNAL, "Unexpected error.")) is None

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.attempts == 1


def test_retryable_error_of_a_taken_item_is_ignored(owner):
    generation = processing_video(owner)
    item = item_claim(item_id=_items(generation)[0].id, claim_token="w1")

    assert item_fail(item=item, claim_token="w2", error=TIMEOUT) is None

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "w1"


# Final status ----------------------------------------------------------------------------


def _assert_ended_as(generation, status):
    """Reload `generation`: it ended with `status`, an end time and its running time."""
    generation.refresh_from_db()
    assert generation.status == status
    assert generation.completed_at is not None
    assert generation.generation_time_seconds > 0


def test_all_completed_ends_completed(owner, evaluations):
    generation = processing_video(owner)
    items = _items(generation)
    for item in items[:-1]:
        _complete(item)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert generation.completed_at is None
    assert GenerationMetadata.objects.get(generation=generation).evaluation == {}
    assert evaluations == []

    _complete(items[-1])

    _assert_ended_as(generation, GenerationStatus.COMPLETED)
    assert generation.error_code == generation.error_message == ""
    assert generation.actual_cost == ITEM_COST * 4
    assert evaluations == [generation.id]
    assert variant_statuses(generation) == {GenerationStatus.COMPLETED}
    assert all(
        variant.completed_at is not None
        for variant in Variant.objects.filter(generation=generation)
    )
    assert_counters_match_items(generation)


def test_some_failed_ends_partial_success(owner):
    generation = processing_video(owner)
    soft_1, soft_2, bold_1, bold_2 = _items(generation)
    _complete(soft_1)
    _complete(soft_2)
    _complete(bold_1)
    _fail(bold_2)

    _assert_ended_as(generation, GenerationStatus.PARTIAL_SUCCESS)
    assert generation.error_code == ErrorCode.PROVIDER_REJECTED
    assert generation.error_message.startswith("1 item(s) failed.")
    assert variant_status_by_label(generation) == {
        "soft": GenerationStatus.COMPLETED,
        "bold": GenerationStatus.PARTIAL_SUCCESS,
    }
    assert_counters_match_items(generation)


def test_none_completed_ends_failed(owner):
    generation = processing_video(owner)
    items = _items(generation)
    _fail(items[0], error=GenerationError(ErrorCode.INTERNAL, "Boom."))
    for item in items[1:]:
        _fail(item)

    _assert_ended_as(generation, GenerationStatus.FAILED)
    assert generation.error_code == ErrorCode.PROVIDER_REJECTED
    assert generation.error_message.startswith("4 item(s) failed.")
    assert variant_statuses(generation) == {GenerationStatus.FAILED}
    assert_counters_match_items(generation)


def test_cancel_wins_over_completed_items(owner, evaluations):
    generation = processing_video(owner)
    items = _items(generation)
    _complete(items[0])
    running = [item_claim(item_id=item.id, claim_token="w1") for item in items[1:]]
    generation_cancel(generation=generation)

    for item in running:
        item_stop_cancelled(item=item, claim_token="w1")

    _assert_ended_as(generation, GenerationStatus.CANCELLED)
    assert (generation.completed_items, generation.cancelled_items) == (1, 3)
    assert variant_statuses(generation) == {GenerationStatus.CANCELLED}
    assert_counters_match_items(generation)


def test_final_status_is_decided_once(owner, evaluations):
    generation = processing_video(owner, variants=["soft"], scenes_per_variant=1)
    item = _complete(_items(generation)[0])
    generation.refresh_from_db()
    decided = (generation.status, generation.completed_at, generation.generation_time_seconds)

    # A late duplicate of the last event, and a second roll-up, change nothing.
    assert not item_complete(item=item, claim_token="w1", result=item_result(item))
    finalise_if_ended(
        generation_id=generation.id,
        variant_ids=[item.variant_id],
        now=timezone.now() + timedelta(hours=1),
    )

    generation.refresh_from_db()
    assert (
        generation.status,
        generation.completed_at,
        generation.generation_time_seconds,
    ) == decided
    assert evaluations == [generation.id]
    variant = Variant.objects.get(id=item.variant_id)
    assert variant.completed_at <= decided[1]


def test_evaluation_is_saved_at_the_end(owner):
    generation = processing_video(owner)
    soft_1, soft_2, bold_1, bold_2 = _items(generation)
    _complete(soft_1)
    _complete(soft_2)
    _complete(bold_1)
    assert GenerationMetadata.objects.get(generation=generation).evaluation == {}

    _fail(bold_2)

    evaluation = GenerationMetadata.objects.get(generation=generation).evaluation
    assert evaluation["success_rate"] == 0.75
    assert evaluation["failure_codes"] == {ErrorCode.PROVIDER_REJECTED: 1}
    assert evaluation["variants"]["soft"] == {
        "completed": 2,
        "failed": 0,
        "cancelled": 0,
        "duration_seconds": 2.0,
        "bytes": 2000,
    }
    assert evaluation["variants"]["bold"]["completed"] == 1
    assert evaluation["variants"]["bold"]["failed"] == 1
    assert evaluation["durations_on_target"] is True
    assert evaluation["off_target_items"] == []


# Lost workers ----------------------------------------------------------------------------


def _age(item, seconds):
    Item.objects.filter(id=item.id).update(started_at=timezone.now() - timedelta(seconds=seconds))


def test_lost_item_is_requeued_then_failed_as_worker_lost(owner, settings):
    settings.ITEM_MAX_ATTEMPTS = 3
    generation = processing_video(owner)
    item = _items(generation)[0]

    for attempt in (1, 2):
        item_claim(item_id=item.id, claim_token=f"delivery-{attempt}")
        _age(item, 3600)
        before = timezone.now()
        assert item_recover_lost(item_id=item.id, started_before=timezone.now()) is True
        item.refresh_from_db()
        assert item.status == ItemStatus.QUEUED
        assert item.claim_token == ""
        assert item.queued_at >= before
        assert item.attempts == attempt
        generation.refresh_from_db()
        assert generation.failed_items == 0

    item_claim(item_id=item.id, claim_token="delivery-3")
    _age(item, 3600)
    assert item_recover_lost(item_id=item.id, started_before=timezone.now()) is False

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error_code == ErrorCode.WORKER_LOST
    assert "3 times" in item.error_message
    generation.refresh_from_db()
    assert generation.failed_items == 1
    assert_counters_match_items(generation)


def test_recent_item_is_not_recovered(owner):
    generation = processing_video(owner)
    item = _items(generation)[0]
    item_claim(item_id=item.id, claim_token="w1")

    lease_start = timezone.now() - timedelta(seconds=900)
    assert item_recover_lost(item_id=item.id, started_before=lease_start) is False

    item.refresh_from_db()
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "w1"
    generation.refresh_from_db()
    assert generation.failed_items == 0


def test_lost_worker_finishing_late_is_not_counted(owner):
    generation = processing_video(owner)
    item = item_claim(item_id=_items(generation)[0].id, claim_token="lost")
    _age(item, 3600)
    item_recover_lost(item_id=item.id, started_before=timezone.now())
    item_claim(item_id=item.id, claim_token="new")

    assert not item_complete(item=item, claim_token="lost", result=item_result(item))

    item = Item.objects.get(id=item.id)
    assert item.status == ItemStatus.PROCESSING
    assert item.claim_token == "new"
    generation.refresh_from_db()
    assert generation.completed_items == 0


# Backoff and elapsed time ----------------------------------------------------------------


def test_retry_delay_grows_exponentially(settings, monkeypatch):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    monkeypatch.setattr(progress.random, "uniform", lambda low, high: 1.0)

    assert [retry_delay(attempts) for attempts in range(0, 6)] == [2, 2, 4, 8, 16, 32]


def test_retry_delay_is_capped(settings, monkeypatch):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    monkeypatch.setattr(progress.random, "uniform", lambda low, high: 1.0)

    assert retry_delay(8) == 2 * 2**7
    assert retry_delay(9) == MAX_RETRY_DELAY_SECONDS
    assert retry_delay(60) == MAX_RETRY_DELAY_SECONDS


def test_retry_delay_has_bounded_jitter(settings):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    delays = {retry_delay(3) for _ in range(50)}

    assert all(8 * 0.8 <= delay <= 8 * 1.2 for delay in delays)
    assert len(delays) > 1


def test_retry_delay_never_exceeds_the_cap(settings, monkeypatch):
    settings.ITEM_RETRY_BACKOFF_SECONDS = 2
    monkeypatch.setattr(progress.random, "uniform", lambda low, high: high)

    assert retry_delay(30) <= MAX_RETRY_DELAY_SECONDS


def test_elapsed_seconds_adds_earlier_runs():
    now = timezone.now()
    generation = Generation(started_at=now - timedelta(seconds=10), generation_time_seconds=5.0)

    assert elapsed_seconds(generation, now) == pytest.approx(15.0)
    assert elapsed_seconds(Generation(generation_time_seconds=5.0), now) == 5.0
    assert elapsed_seconds(Generation(), now) == 0.0
    assert elapsed_seconds(Generation(started_at=now + timedelta(seconds=3)), now) == 0.0


# Concurrency -----------------------------------------------------------------------------


THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_count_every_item_exactly_once(owner, evaluations, counting):
    """8 workers race over every item of one generation: each item is claimed once,
    every counter equals the truth and the final status is decided once."""
    labels = [f"v{n}" for n in range(8)]
    generation = processing_video(owner, variants=labels, scenes_per_variant=12)
    items = _items(generation)
    assert len(items) == 96
    # Item 5 of every variant fails; the rest complete.
    failing = {item.id for item in items if item.number == 5}
    barrier = threading.Barrier(THREADS)
    claimed_by: dict[int, list] = {n: [] for n in range(THREADS)}
    errors = []

    def worker(n):
        try:
            barrier.wait(timeout=10)
            # Each worker walks every item, starting at a different place.
            order = items[n * 12 :] + items[: n * 12]
            for item in order:
                token = f"worker-{n}-{item.id}"
                claimed = item_claim(item_id=item.id, claim_token=token)
                if claimed is None:
                    continue
                claimed_by[n].append(item.id)
                if item.id in failing:
                    item_fail(item=claimed, claim_token=token, error=REJECTED)
                else:
                    assert item_complete(
                        item=claimed, claim_token=token, result=item_result(claimed)
                    )
        except Exception as exc:  # noqa: BLE001 (reported to the main thread)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    all_claims = [item_id for claims in claimed_by.values() for item_id in claims]
    assert sorted(all_claims) == sorted(item.id for item in items)
    assert sum(1 for claims in claimed_by.values() if claims) > 1

    generation.refresh_from_db()
    assert generation.completed_items == 88
    assert generation.failed_items == 8
    assert generation.cancelled_items == 0
    assert generation.actual_cost == ITEM_COST * 88
    assert generation.status == GenerationStatus.PARTIAL_SUCCESS
    assert generation.completed_at is not None
    assert evaluations == [generation.id]
    for variant in Variant.objects.filter(generation=generation):
        assert (variant.completed_items, variant.failed_items) == (11, 1)
        assert variant.status == GenerationStatus.PARTIAL_SUCCESS
    assert Item.objects.filter(generation=generation, attempts=1).count() == 96
    assert_counters_match_items(generation)
    evaluation = GenerationMetadata.objects.get(generation=generation).evaluation
    assert evaluation["success_rate"] == round(88 / 96, 4)
