"""Usage statistics over generations, computed by the database in a fixed number of queries.

The summary (counts, costs, times, failure codes, the p95) is built from rows grouped by
status, kind and error code. On PostgreSQL the ended generations' rows come from the
running totals a trigger keeps (`GenerationTally`), the active generations' from a grouped
query over the few that are pending or processing, and the p95 from the two times around
its rank, read from the top of an index: one query, however many generations there are.
Elsewhere one grouped query over the generations and one row read at the p95's rank. The
daily series is one more grouped query. Failures and the success of items at their first
attempt and in the end come from the attempt log, so a failure that a retry made good is
still counted: two more queries. No query returns more rows than the groups, the error
codes, the days asked for, or two.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connections
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from generations.kinds import GenerationKind
from generations.models import Attempt, Generation
from generations.selectors import generation_scope
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    FAILURE_OUTCOMES,
    FINAL_GENERATION_STATUSES,
    AttemptOutcome,
    GenerationStatus,
)

MAX_DAYS = 366
TOP_FAILURE_CODES = 5
# The p95 as a whole percent, so that the nearest rank is exact integer arithmetic.
P95_PERCENT = 95

_MONEY_STEP = Decimal("0.0001")
_ENDED = frozenset(FINAL_GENERATION_STATUSES)
# The statuses that judge a run: cancelled ones ended but say nothing about success.
_JUDGED = frozenset(
    {GenerationStatus.COMPLETED, GenerationStatus.PARTIAL_SUCCESS, GenerationStatus.FAILED}
)


@dataclass(frozen=True)
class _Group:
    """Generations of one status, kind and error code, and their sums."""

    status: str
    kind: str
    error_code: str
    generations: int
    cost_estimate: Decimal
    actual_cost: Decimal
    timed: int
    time_seconds: float


def generation_stats(
    *, owner: User | None, days: int = 30, now: datetime | None = None
) -> dict[str, Any]:
    """Statistics over `owner`'s generations (`owner=None`: everyone's; the caller checks
    that the user is staff), soft-deleted ones excluded, as a JSON-serialisable dict.

    Totals, costs, times and failure codes cover all time; `daily` covers the last `days`
    days (1 to MAX_DAYS) ending on `now`'s date in the current time zone, oldest first,
    zero-filled. The success rate counts completed, partial and failed runs; the average
    actual cost and the actual/estimate ratio count ended runs (cancelled included). The
    p95 is interpolated between the two nearest values on PostgreSQL (as
    `percentile_cont`), the nearest rank elsewhere. Money is a string with 4 decimals; a
    rate, average or ratio with nothing to measure is null.

    Two queries on PostgreSQL, three elsewhere.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    generations = _generations_in_scope(owner)
    if connections[generations.db].vendor == "postgresql":
        groups, p95 = _tallied_summary(owner, using=generations.db)
    else:
        groups = _grouped(generations)
        p95 = _nearest_rank_p95(generations, sum(group.timed for group in groups))

    by_status = dict.fromkeys(GenerationStatus.values, 0)
    by_kind = dict.fromkeys(GenerationKind.values, 0)
    ended_estimate = ended_actual = estimate_total = actual_total = Decimal(0)
    timed, time_total = 0, 0.0
    for group in groups:
        by_status[group.status] = by_status.get(group.status, 0) + group.generations
        by_kind[group.kind] = by_kind.get(group.kind, 0) + group.generations
        estimate_total += group.cost_estimate
        actual_total += group.actual_cost
        if group.status in _ENDED:
            ended_estimate += group.cost_estimate
            ended_actual += group.actual_cost
        timed += group.timed
        time_total += group.time_seconds
    judged = sum(by_status[status] for status in _JUDGED)
    ended = sum(by_status[status] for status in _ENDED)
    success_rate = round(by_status[GenerationStatus.COMPLETED] / judged, 4) if judged else None
    attempts = Attempt.objects.filter(generation__in=generations)
    return {
        "scope": "user" if owner is not None else "all",
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_kind": by_kind,
        "success_rate": success_rate,
        "cost": {
            "estimate_total": _money(estimate_total),
            "actual_total": _money(actual_total),
            "actual_average": _money(ended_actual / ended) if ended else None,
            "actual_vs_estimate": (
                float(_quantize(ended_actual / ended_estimate)) if ended_estimate else None
            ),
        },
        "generation_time": {
            "average_seconds": _seconds(time_total / timed) if timed else None,
            "p95_seconds": _seconds(p95),
        },
        "items": _item_success(attempts),
        "top_failure_codes": _top_failure_codes(attempts),
        "daily": _daily(generations, days=days, now=now or timezone.now()),
    }


def _top_failure_codes(attempts: QuerySet[Attempt]) -> list[dict[str, Any]]:
    """The most frequent error codes of failed attempts, retried or not, most first (ties
    by code)."""
    rows = (
        attempts.filter(outcome__in=FAILURE_OUTCOMES)
        .exclude(error_code="")
        .values("error_code")
        .annotate(count=Count("pk"))
        .order_by("-count", "error_code")[:TOP_FAILURE_CODES]
    )
    return [{"code": row["error_code"], "count": row["count"]} for row in rows]


def _item_success(attempts: QuerySet[Attempt]) -> dict[str, Any]:
    """Items' success at their first attempt, and in the end (any attempt completed),
    among the items whose attempts were judged (cancelled attempts say nothing)."""
    judged = Q(outcome__in=[AttemptOutcome.COMPLETED, *FAILURE_OUTCOMES])
    completed = Q(outcome=AttemptOutcome.COMPLETED)
    totals = attempts.aggregate(
        first_completed=Count("pk", filter=Q(number=1) & completed),
        first_judged=Count("pk", filter=Q(number=1) & judged),
        finally_completed=Count("item", distinct=True, filter=completed),
        finally_judged=Count("item", distinct=True, filter=judged),
        failed=Count("pk", filter=Q(outcome__in=FAILURE_OUTCOMES)),
    )
    return {
        "first_attempt_success_rate": _rate(totals["first_completed"], totals["first_judged"]),
        "final_success_rate": _rate(totals["finally_completed"], totals["finally_judged"]),
        "failed_attempts": totals["failed"],
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _generations_in_scope(owner: User | None) -> QuerySet[Generation]:
    if owner is not None:
        return generation_scope(owner)
    return Generation.objects.filter(deleted_at__isnull=True)


def _grouped(generations: QuerySet[Generation]) -> list[_Group]:
    rows = (
        generations.order_by()
        .values("status", "kind", "error_code")
        .annotate(
            generations=Count("*"),
            cost_estimate=Coalesce(Sum("cost_estimate"), Decimal(0)),
            actual_cost=Coalesce(Sum("actual_cost"), Decimal(0)),
            timed=Count("generation_time_seconds"),
            time_seconds=Coalesce(Sum("generation_time_seconds"), 0.0),
        )
    )
    return _groups(
        (
            row["status"],
            row["kind"],
            row["error_code"],
            row["generations"],
            row["cost_estimate"],
            row["actual_cost"],
            row["timed"],
            row["time_seconds"],
        )
        for row in rows
    )


def _groups(rows: Iterable[tuple[Any, ...]]) -> list[_Group]:
    return [
        _Group(
            status=status,
            kind=kind,
            error_code=code,
            generations=int(count),
            cost_estimate=Decimal(estimate or 0),
            actual_cost=Decimal(actual or 0),
            timed=int(timed or 0),
            time_seconds=float(seconds or 0.0),
        )
        for status, kind, code, count, estimate, actual, timed, seconds in rows
    ]


# {owner} is empty or an owner condition; the statuses and the fraction are parameters.
_TALLIED_SUMMARY = """
WITH grouped AS (
    SELECT status, kind, error_code, sum(generations) AS generations,
        sum(cost_estimate) AS cost_estimate, sum(actual_cost) AS actual_cost,
        sum(timed) AS timed, sum(time_seconds) AS time_seconds
    FROM generations_generationtally
    WHERE generations > 0 {owner}
    GROUP BY status, kind, error_code
    UNION ALL
    SELECT status, kind, error_code, count(*), sum(cost_estimate), sum(actual_cost),
        count(generation_time_seconds), coalesce(sum(generation_time_seconds), 0)
    FROM generations_generation
    WHERE deleted_at IS NULL AND status = ANY(%s) {owner}
    GROUP BY status, kind, error_code
), timed AS (
    SELECT coalesce(sum(timed), 0)::bigint AS n FROM grouped
)
SELECT false, grouped.* FROM grouped
UNION ALL
SELECT true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, around.generation_time_seconds
FROM (
    SELECT generation_time_seconds FROM generations_generation
    WHERE deleted_at IS NULL AND generation_time_seconds IS NOT NULL {owner}
    ORDER BY generation_time_seconds DESC
    OFFSET (SELECT greatest(n - 2 - floor(%s * (n - 1))::bigint, 0) FROM timed)
    LIMIT 2
) AS around
"""


def _tallied_summary(owner: User | None, *, using: str) -> tuple[list[_Group], float | None]:
    """PostgreSQL: the groups from the tally and the active generations, and the p95
    interpolated between the two times around its rank (as `percentile_cont`)."""
    owner_condition, owner_params = ("", []) if owner is None else ("AND owner_id = %s", [owner.pk])
    fraction = P95_PERCENT / 100
    active = list(ACTIVE_GENERATION_STATUSES)
    with connections[using].cursor() as cursor:
        cursor.execute(
            _TALLIED_SUMMARY.format(owner=owner_condition),
            [*owner_params, active, *owner_params, *owner_params, fraction],
        )
        rows = cursor.fetchall()
    groups = _groups(row[1:] for row in rows if not row[0])
    around = [float(row[-1]) for row in rows if row[0]]  # the higher time first
    timed = sum(group.timed for group in groups)
    if not around:
        return groups, None
    rank = fraction * (timed - 1)
    lower, higher = around[-1], around[0]
    return groups, lower + (rank - math.floor(rank)) * (higher - lower)


def _nearest_rank_p95(generations: QuerySet[Generation], timed: int) -> float | None:
    """The p95 by nearest rank, for databases without the tally: one row read at its
    offset."""
    if not timed:
        return None
    rank = (P95_PERCENT * timed + 99) // 100  # ceil(0.95 * timed), 1-based
    values = (
        generations.filter(generation_time_seconds__isnull=False)
        .order_by("generation_time_seconds")
        .values_list("generation_time_seconds", flat=True)[rank - 1 : rank]
    )
    # A row deleted since the summary query leaves nothing at the offset.
    return next(iter(values), None)


def _daily(generations: QuerySet[Generation], *, days: int, now: datetime) -> list[dict[str, Any]]:
    zone = timezone.get_current_timezone()
    today = timezone.localdate(now, zone)
    first_day = today - timedelta(days=days - 1)
    # A range on created_at itself, so the (owner, created_at) index serves it.
    rows = (
        generations.filter(
            created_at__gte=_local_midnight(first_day, zone),
            created_at__lt=_local_midnight(today + timedelta(days=1), zone),
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(
            total=Count("*"),
            completed=Count("pk", filter=Q(status=GenerationStatus.COMPLETED)),
            failed=Count("pk", filter=Q(status=GenerationStatus.FAILED)),
            actual_cost=Sum("actual_cost"),
        )
        .order_by("day")
    )
    by_day: dict[date, Mapping[str, Any]] = {row["day"]: row for row in rows}
    daily = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        row = by_day.get(day, {})
        daily.append(
            {
                "date": day.isoformat(),
                "total": row.get("total", 0),
                "completed": row.get("completed", 0),
                "failed": row.get("failed", 0),
                "actual_cost": _money(row.get("actual_cost")),
            }
        )
    return daily


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), zone)


def _quantize(value: Decimal) -> Decimal:
    return value.quantize(_MONEY_STEP, rounding=ROUND_HALF_UP)


def _money(value: Decimal | None) -> str:
    """A sum of money as a string with 4 decimals; no rows sum to zero."""
    return str(_quantize(Decimal(value or 0)))


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
