"""Tests for `generation_stats`: counts, rates, costs, times, failure codes, the daily
series, scoping and the number of queries."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from generations import stats
from generations.errors import ErrorCode
from generations.kinds import GenerationKind
from generations.models import Generation
from generations.states import AttemptOutcome, GenerationStatus
from generations.stats import MAX_DAYS, generation_stats
from generations.tests.factories import (
    AttemptFactory,
    GenerationFactory,
    ItemFactory,
    UserFactory,
    VariantFactory,
)
from tests.tiers import require_postgresql

pytestmark = pytest.mark.django_db

# Midday UTC, so that "today" is the same date in UTC and in New York.
NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
POSTGRES = connection.vendor == "postgresql"


def _generation(owner, *, created_at=None, **fields):
    """A generation with the given fields; created_at is auto_now_add, so it is set after."""
    generation = GenerationFactory(owner=owner, **fields)
    if created_at is not None:
        Generation.objects.filter(pk=generation.pk).update(created_at=created_at)
    return generation


def _stats(owner, **kwargs):
    return generation_stats(owner=owner, now=kwargs.pop("now", NOW), **kwargs)


def _daily_by_date(stats):
    return {day["date"]: day for day in stats["daily"]}


# Empty ---------------------------------------------------------------------------------


def test_empty_stats_are_zeros_and_nulls(owner):
    stats = _stats(owner)

    assert stats["scope"] == "user"
    assert stats["total"] == 0
    assert stats["by_status"] == dict.fromkeys(GenerationStatus.values, 0)
    assert stats["by_kind"] == dict.fromkeys(GenerationKind.values, 0)
    assert stats["success_rate"] is None
    assert stats["cost"] == {
        "estimate_total": "0.0000",
        "actual_total": "0.0000",
        "actual_average": None,
        "actual_vs_estimate": None,
    }
    assert stats["generation_time"] == {"average_seconds": None, "p95_seconds": None}
    assert stats["top_failure_codes"] == []
    assert len(stats["daily"]) == 30
    assert stats["daily"][-1] == {
        "date": "2025-03-15",
        "total": 0,
        "completed": 0,
        "failed": 0,
        "actual_cost": "0.0000",
    }
    assert stats["daily"][0]["date"] == "2025-02-14"
    assert json.loads(json.dumps(stats)) == stats


# Counts and success rate ---------------------------------------------------------------


def test_counts_every_status_and_kind(owner):
    _generation(owner, status=GenerationStatus.COMPLETED, kind=GenerationKind.IMAGE)
    _generation(owner, status=GenerationStatus.COMPLETED, kind=GenerationKind.SPEECH)
    _generation(owner, status=GenerationStatus.FAILED, kind=GenerationKind.IMAGE)
    _generation(owner, status=GenerationStatus.PENDING, kind=GenerationKind.VIDEO_AD)

    stats = _stats(owner)

    assert stats["total"] == 4
    assert stats["by_status"] == {
        "pending": 1,
        "processing": 0,
        "completed": 2,
        "partial_success": 0,
        "failed": 1,
        "cancelling": 0,
        "cancelled": 0,
    }
    assert stats["by_kind"] == {"video_ad": 1, "speech": 1, "image": 2}


def test_success_rate_is_completed_over_judged_runs(owner):
    for status in [
        *[GenerationStatus.COMPLETED] * 3,
        GenerationStatus.PARTIAL_SUCCESS,
        GenerationStatus.FAILED,
        # Neither counts: a cancel or an active run says nothing about success.
        GenerationStatus.CANCELLED,
        GenerationStatus.PROCESSING,
    ]:
        _generation(owner, status=status)

    assert _stats(owner)["success_rate"] == 0.6


def test_success_rate_is_rounded_to_four_decimals(owner):
    _generation(owner, status=GenerationStatus.COMPLETED)
    _generation(owner, status=GenerationStatus.FAILED)
    _generation(owner, status=GenerationStatus.FAILED)

    assert _stats(owner)["success_rate"] == 0.3333


def test_success_rate_is_null_when_only_cancelled_or_active(owner):
    _generation(owner, status=GenerationStatus.CANCELLED)
    _generation(owner, status=GenerationStatus.PENDING)

    assert _stats(owner)["success_rate"] is None


# Cost ----------------------------------------------------------------------------------


def test_cost_totals_average_and_ratio(owner):
    _generation(
        owner,
        status=GenerationStatus.COMPLETED,
        cost_estimate=Decimal("1.0000"),
        actual_cost=Decimal("1.2000"),
    )
    _generation(
        owner,
        status=GenerationStatus.FAILED,
        cost_estimate=Decimal("2.0000"),
        actual_cost=Decimal("0.5000"),
    )
    _generation(
        owner,
        status=GenerationStatus.CANCELLED,
        cost_estimate=Decimal("1.0000"),
        actual_cost=Decimal("0.1000"),
    )
    # Still running: in the totals, not in the average or the ratio.
    _generation(
        owner,
        status=GenerationStatus.PROCESSING,
        cost_estimate=Decimal("3.0000"),
        actual_cost=Decimal("0.2500"),
    )

    assert _stats(owner)["cost"] == {
        "estimate_total": "7.0000",
        "actual_total": "2.0500",
        "actual_average": "0.6000",  # 1.8 over the 3 that ended
        "actual_vs_estimate": 0.45,  # 1.8 / 4.0
    }


def test_cost_average_is_rounded_money(owner):
    _generation(owner, status=GenerationStatus.COMPLETED, actual_cost=Decimal("1.0000"))
    _generation(owner, status=GenerationStatus.COMPLETED, actual_cost=Decimal("0.0000"))
    _generation(owner, status=GenerationStatus.FAILED, actual_cost=Decimal("1.0000"))

    cost = _stats(owner)["cost"]

    assert cost["actual_average"] == "0.6667"
    assert cost["actual_vs_estimate"] is None  # nothing was estimated


# Generation time -----------------------------------------------------------------------


def test_generation_time_average_and_p95(owner):
    for seconds in range(1, 21):
        _generation(owner, status=GenerationStatus.COMPLETED, generation_time_seconds=seconds)
    _generation(owner, status=GenerationStatus.PROCESSING, generation_time_seconds=None)

    times = _stats(owner)["generation_time"]

    assert times["average_seconds"] == 10.5
    # percentile_cont interpolates: 19 + 0.05 * (20 - 19); nearest rank is the 19th value.
    assert times["p95_seconds"] == (19.05 if POSTGRES else 19.0)


def test_p95_of_a_single_value_is_that_value(owner):
    _generation(owner, status=GenerationStatus.COMPLETED, generation_time_seconds=4.25)

    assert _stats(owner)["generation_time"] == {"average_seconds": 4.25, "p95_seconds": 4.25}


# Failure codes -------------------------------------------------------------------------


def _attempts(owner, *specs, generation=None):
    """Attempts at fresh items of one of `owner`'s generations: each spec is (number,
    outcome, error code)."""
    generation = generation or _generation(owner, status=GenerationStatus.PARTIAL_SUCCESS)
    item = ItemFactory(variant=VariantFactory(generation=generation))
    for number, outcome, code in specs:
        AttemptFactory(item=item, number=number, outcome=outcome, error_code=code)
    return item


def test_top_failure_codes_are_the_five_most_frequent_failed_attempts(owner):
    failures = {
        ErrorCode.PROVIDER_ERROR: 3,
        ErrorCode.INTERNAL: 2,
        ErrorCode.PROVIDER_TIMEOUT: 2,
        ErrorCode.INVALID_INPUT: 1,
        ErrorCode.STORAGE_UNAVAILABLE: 1,
        ErrorCode.WORKER_LOST: 1,
    }
    outcomes = [AttemptOutcome.FAILED, AttemptOutcome.RETRYING, AttemptOutcome.LOST]
    for code, count in failures.items():
        for index in range(count):
            _attempts(owner, (1, outcomes[index % 3], code))
    # Not failures, or failures without a code: never counted.
    _attempts(owner, (1, AttemptOutcome.CANCELLED, ErrorCode.CANCELLED))
    _attempts(owner, (1, AttemptOutcome.COMPLETED, ""))
    _attempts(owner, (1, AttemptOutcome.FAILED, ""))
    # Another user's failures are theirs.
    _attempts(UserFactory(), (1, AttemptOutcome.FAILED, ErrorCode.WORKER_LOST))

    # Ties go by code, so worker_lost (1) is the one left out.
    assert _stats(owner)["top_failure_codes"] == [
        {"code": "provider_error", "count": 3},
        {"code": "internal", "count": 2},
        {"code": "provider_timeout", "count": 2},
        {"code": "invalid_input", "count": 1},
        {"code": "storage_unavailable", "count": 1},
    ]


def test_a_failure_made_good_by_a_retry_is_still_counted(owner):
    _attempts(
        owner,
        (1, AttemptOutcome.RETRYING, ErrorCode.PROVIDER_TIMEOUT),
        (2, AttemptOutcome.COMPLETED, ""),
    )

    stats = _stats(owner)

    assert stats["top_failure_codes"] == [{"code": "provider_timeout", "count": 1}]
    assert stats["items"]["failed_attempts"] == 1


def test_items_succeed_at_their_first_attempt_and_in_the_end(owner):
    _attempts(owner, (1, AttemptOutcome.COMPLETED, ""))
    _attempts(
        owner,
        (1, AttemptOutcome.FAILED, ErrorCode.PROVIDER_REJECTED),
        (2, AttemptOutcome.COMPLETED, ""),
    )
    _attempts(
        owner,
        (1, AttemptOutcome.LOST, ErrorCode.WORKER_LOST),
        (2, AttemptOutcome.FAILED, ErrorCode.PROVIDER_ERROR),
    )
    # A cancelled attempt judges nothing.
    _attempts(owner, (1, AttemptOutcome.CANCELLED, ErrorCode.CANCELLED))

    assert _stats(owner)["items"] == {
        "first_attempt_success_rate": 0.3333,
        "final_success_rate": 0.6667,
        "failed_attempts": 3,
    }


def test_item_success_is_null_without_judged_attempts(owner):
    assert _stats(owner)["items"] == {
        "first_attempt_success_rate": None,
        "final_success_rate": None,
        "failed_attempts": 0,
    }


def test_failures_of_generations_in_the_trash_are_left_out(owner):
    generation = _generation(owner, status=GenerationStatus.FAILED)
    _attempts(owner, (1, AttemptOutcome.FAILED, ErrorCode.INTERNAL), generation=generation)
    Generation.objects.filter(pk=generation.pk).update(deleted_at=NOW)

    assert _stats(owner)["top_failure_codes"] == []


def test_top_failure_codes_include_codes_outside_the_taxonomy(owner, django_assert_num_queries):
    _attempts(owner, (1, AttemptOutcome.FAILED, "legacy_quota"))
    _attempts(owner, (1, AttemptOutcome.RETRYING, "legacy_quota"))
    _attempts(owner, (1, AttemptOutcome.FAILED, ErrorCode.PROVIDER_ERROR))
    _attempts(owner, (1, AttemptOutcome.COMPLETED, "legacy_other"))

    # Codes are grouped: one outside the taxonomy costs no extra query. Two queries of
    # generations (with no times, SQLite reads no p95 row), two of attempts.
    with django_assert_num_queries(4):
        stats = _stats(owner)

    assert stats["top_failure_codes"] == [
        {"code": "legacy_quota", "count": 2},
        {"code": "provider_error", "count": 1},
    ]


# Daily series --------------------------------------------------------------------------


def test_daily_series_is_zero_filled_and_bounded_to_days(owner):
    today = NOW.replace(hour=9)
    _generation(owner, created_at=today, status=GenerationStatus.COMPLETED, actual_cost="0.5")
    _generation(
        owner,
        created_at=today - timedelta(days=2),
        status=GenerationStatus.COMPLETED,
        actual_cost=Decimal("1.2500"),
    )
    _generation(
        owner,
        created_at=today - timedelta(days=2, hours=1),
        status=GenerationStatus.FAILED,
        actual_cost=Decimal("0.1000"),
    )
    _generation(owner, created_at=NOW.replace(hour=0), status=GenerationStatus.PENDING)
    # The first local midnight of the window is inside it.
    _generation(
        owner, created_at=NOW.replace(hour=0) - timedelta(days=6), status=GenerationStatus.FAILED
    )
    # Outside the window on either side; still in the all-time totals.
    _generation(owner, created_at=NOW.replace(hour=0) - timedelta(days=6, seconds=1))
    _generation(owner, created_at=NOW.replace(hour=0) + timedelta(days=1))

    stats = _stats(owner, days=7)

    assert stats["total"] == 7
    assert [day["date"] for day in stats["daily"]] == [
        "2025-03-09",
        "2025-03-10",
        "2025-03-11",
        "2025-03-12",
        "2025-03-13",
        "2025-03-14",
        "2025-03-15",
    ]
    zero = {"total": 0, "completed": 0, "failed": 0, "actual_cost": "0.0000"}
    assert stats["daily"] == [
        {"date": "2025-03-09", "total": 1, "completed": 0, "failed": 1, "actual_cost": "0.0000"},
        {"date": "2025-03-10", **zero},
        {"date": "2025-03-11", **zero},
        {"date": "2025-03-12", **zero},
        {"date": "2025-03-13", "total": 2, "completed": 1, "failed": 1, "actual_cost": "1.3500"},
        {"date": "2025-03-14", **zero},
        {"date": "2025-03-15", "total": 2, "completed": 1, "failed": 0, "actual_cost": "0.5000"},
    ]


def test_daily_series_of_one_day_is_today(owner):
    _generation(owner, created_at=NOW - timedelta(days=1))

    assert _stats(owner, days=1)["daily"] == [
        {"date": "2025-03-15", "total": 0, "completed": 0, "failed": 0, "actual_cost": "0.0000"}
    ]


@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1])
def test_days_outside_the_allowed_range_are_refused(owner, days):
    with pytest.raises(ValueError, match="days must be between"):
        generation_stats(owner=owner, days=days)


def test_days_are_counted_in_the_current_time_zone(owner, settings):
    settings.TIME_ZONE = "America/New_York"
    # 03:00 UTC is 23:00 the evening before in New York (EDT, UTC-4).
    _generation(owner, created_at=datetime(2025, 3, 15, 3, 0, tzinfo=UTC))
    # 05:00 UTC is 01:00 the same day in New York.
    _generation(owner, created_at=datetime(2025, 3, 15, 5, 0, tzinfo=UTC))

    daily = _daily_by_date(_stats(owner, days=3))

    assert daily["2025-03-14"]["total"] == 1
    assert daily["2025-03-15"]["total"] == 1
    # One day in New York starts at 04:00 UTC: the evening before is outside it.
    assert [day["total"] for day in _stats(owner, days=1)["daily"]] == [1]


def test_same_rows_fall_on_utc_days_in_utc(owner, settings):
    settings.TIME_ZONE = "UTC"
    _generation(owner, created_at=datetime(2025, 3, 15, 3, 0, tzinfo=UTC))
    _generation(owner, created_at=datetime(2025, 3, 15, 5, 0, tzinfo=UTC))

    daily = _daily_by_date(_stats(owner, days=3))

    assert daily["2025-03-14"]["total"] == 0
    assert daily["2025-03-15"]["total"] == 2


def test_today_is_the_local_date_of_now(owner, settings):
    settings.TIME_ZONE = "America/New_York"
    # 02:00 UTC on the 15th is still the 14th in New York.
    stats = _stats(owner, days=2, now=datetime(2025, 3, 15, 2, 0, tzinfo=UTC))

    assert [day["date"] for day in stats["daily"]] == ["2025-03-13", "2025-03-14"]


def test_days_across_a_daylight_saving_change(owner, settings):
    settings.TIME_ZONE = "America/New_York"
    # Clocks went forward on 2025-03-09: 23:30 local is 04:30 UTC before, 03:30 UTC after.
    _generation(owner, created_at=datetime(2025, 3, 9, 4, 30, tzinfo=UTC))  # 8th, EST
    _generation(owner, created_at=datetime(2025, 3, 10, 3, 30, tzinfo=UTC))  # 9th, EDT

    daily = _daily_by_date(_stats(owner, days=10))

    assert daily["2025-03-08"]["total"] == 1
    assert daily["2025-03-09"]["total"] == 1
    assert daily["2025-03-10"]["total"] == 0
    assert len(daily) == 10


# Scope ---------------------------------------------------------------------------------


def _mixed_rows(user, *, created_at):
    """A failed speech generation whose one item failed with a timeout."""
    generation = _generation(
        user,
        created_at=created_at,
        status=GenerationStatus.FAILED,
        kind=GenerationKind.SPEECH,
        cost_estimate=Decimal("2.0000"),
        actual_cost=Decimal("1.0000"),
        generation_time_seconds=100.0,
        error_code=ErrorCode.PROVIDER_TIMEOUT,
    )
    _attempts(user, (1, AttemptOutcome.FAILED, ErrorCode.PROVIDER_TIMEOUT), generation=generation)


def test_another_users_generations_are_never_counted(owner, other_user):
    _generation(
        owner,
        created_at=NOW,
        status=GenerationStatus.COMPLETED,
        kind=GenerationKind.IMAGE,
        cost_estimate=Decimal("1.0000"),
        actual_cost=Decimal("0.5000"),
        generation_time_seconds=2.0,
    )
    _mixed_rows(other_user, created_at=NOW)

    stats = _stats(owner, days=1)

    assert stats["total"] == 1
    assert stats["by_status"]["failed"] == 0
    assert stats["by_kind"]["speech"] == 0
    assert stats["success_rate"] == 1.0
    assert stats["cost"] == {
        "estimate_total": "1.0000",
        "actual_total": "0.5000",
        "actual_average": "0.5000",
        "actual_vs_estimate": 0.5,
    }
    assert stats["generation_time"] == {"average_seconds": 2.0, "p95_seconds": 2.0}
    assert stats["top_failure_codes"] == []
    assert stats["daily"][0]["total"] == 1
    assert stats["daily"][0]["failed"] == 0
    assert json.loads(json.dumps(stats)) == stats


def test_owner_none_counts_everyone(owner, other_user, staff_user):
    _generation(owner, created_at=NOW, status=GenerationStatus.COMPLETED)
    _mixed_rows(other_user, created_at=NOW)

    stats = _stats(None, days=1)

    assert stats["scope"] == "all"
    assert stats["total"] == 2
    assert stats["by_status"]["completed"] == 1
    assert stats["by_status"]["failed"] == 1
    assert stats["top_failure_codes"] == [{"code": "provider_timeout", "count": 1}]
    assert stats["daily"][0]["total"] == 2


@pytest.mark.parametrize("scoped", [True, False], ids=["user", "all"])
def test_soft_deleted_generations_are_excluded(owner, scoped):
    _generation(owner, created_at=NOW, status=GenerationStatus.COMPLETED)
    deleted = _generation(owner, created_at=NOW)
    _mixed_rows(owner, created_at=NOW)
    Generation.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    Generation.objects.filter(status=GenerationStatus.FAILED).update(deleted_at=timezone.now())

    stats = _stats(owner if scoped else None, days=1)

    assert stats["total"] == 1
    assert stats["by_status"]["failed"] == 0
    assert stats["cost"]["actual_total"] == "0.0000"
    assert stats["generation_time"]["average_seconds"] is None
    assert stats["top_failure_codes"] == []
    assert stats["daily"][0]["total"] == 1


# Queries -------------------------------------------------------------------------------


@pytest.mark.parametrize("scoped", [True, False], ids=["user", "all"])
def test_stats_take_a_fixed_number_of_queries(
    owner, other_user, scoped, django_assert_max_num_queries, django_assert_num_queries
):
    for user in (owner, other_user):
        for seconds in range(1, 11):
            _mixed_rows(user, created_at=NOW - timedelta(days=seconds))
            _generation(user, status=GenerationStatus.COMPLETED, generation_time_seconds=seconds)

    with django_assert_max_num_queries(5):
        _stats(owner if scoped else None, days=30)
    # The summary, the daily series, the failure codes and the items' success; SQLite
    # reads the p95 row on its own.
    with django_assert_num_queries(4 if POSTGRES else 5):
        _stats(owner if scoped else None, days=30)


# The tally (PostgreSQL) -----------------------------------------------------------------


def _sums(groups):
    totals = {}
    for group in groups:
        key = (group.status, group.kind, group.error_code)
        count, estimate, actual, timed, seconds = totals.get(key, (0, 0, 0, 0, 0.0))
        totals[key] = (
            count + group.generations,
            estimate + group.cost_estimate,
            actual + group.actual_cost,
            timed + group.timed,
            round(seconds + group.time_seconds, 6),
        )
    return {key: value for key, value in totals.items() if value[0]}


def test_the_tally_follows_every_write_of_a_generation(owner, other_user):
    """Whatever writes a generation (services, bulk updates, deletes), the totals the
    statistics read equal the generations counted one by one."""
    require_postgresql("the tally is kept by a PostgreSQL trigger")
    running = _generation(owner, status=GenerationStatus.PROCESSING, actual_cost="0.1000")
    ended = _generation(owner, status=GenerationStatus.FAILED, error_code=ErrorCode.INTERNAL)
    _generation(other_user, status=GenerationStatus.COMPLETED, generation_time_seconds=3.5)
    cancelled = _generation(owner, status=GenerationStatus.CANCELLED, actual_cost="0.2000")

    rows = Generation.objects.filter(pk=running.pk)
    rows.update(actual_cost=Decimal("0.3000"))  # an item counted while running
    rows.update(status=GenerationStatus.COMPLETED, generation_time_seconds=12.25)
    # An item that was running when the generation was cancelled finishes later.
    Generation.objects.filter(pk=cancelled.pk).update(actual_cost=Decimal("0.2500"))
    Generation.objects.filter(pk=ended.pk).update(status=GenerationStatus.PROCESSING)  # retry
    Generation.objects.filter(pk=ended.pk).update(
        status=GenerationStatus.PARTIAL_SUCCESS, error_code=ErrorCode.PROVIDER_ERROR
    )
    trashed = _generation(owner, status=GenerationStatus.COMPLETED)
    Generation.objects.filter(pk=trashed.pk).update(deleted_at=timezone.now())
    restored = _generation(owner, status=GenerationStatus.COMPLETED)
    Generation.objects.filter(pk=restored.pk).update(deleted_at=timezone.now())
    Generation.objects.filter(pk=restored.pk).update(deleted_at=None)
    _generation(owner, status=GenerationStatus.COMPLETED).delete()

    visible = Generation.objects.filter(deleted_at__isnull=True)
    tallied, _ = stats._tallied_summary(None, using="default")
    assert _sums(tallied) == _sums(stats._grouped(visible))
    mine, _ = stats._tallied_summary(owner, using="default")
    assert _sums(mine) == _sums(stats._grouped(visible.filter(owner=owner)))
