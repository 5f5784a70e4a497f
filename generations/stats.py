"""Usage statistics over generations, computed by the database in a fixed number of queries.

The summary (counts, costs, times, failure codes and, on PostgreSQL, the p95) is one
aggregate query with conditional aggregation; the daily series is one grouped query. No
query returns more rows than the days asked for or the five top failure codes.
"""

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connections
from django.db.models import Aggregate, Avg, Count, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from generations.errors import ErrorCode
from generations.models import Generation, GenerationKind
from generations.selectors import generations_visible_to
from generations.states import FINAL_GENERATION_STATUSES, GenerationStatus

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
_FAILURE_STATUSES = [GenerationStatus.FAILED, GenerationStatus.PARTIAL_SUCCESS]
_FAILED_WITH_CODE = Q(status__in=_FAILURE_STATUSES) & ~Q(error_code="")


class Percentile(Aggregate):
    """PostgreSQL's `percentile_cont`: the continuous percentile (linear interpolation
    between the two nearest values) of a column, nulls ignored."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, *, fraction: float, **extra: Any) -> None:
        # The fraction is written into the SQL: accept only a number in [0, 1].
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be between 0 and 1, not {fraction}")
        super().__init__(expression, fraction=fraction, output_field=FloatField(), **extra)


def generation_stats(
    *, owner: User | None, days: int = 30, now: datetime | None = None
) -> dict[str, Any]:
    """Statistics over `owner`'s generations (`owner=None`: everyone's; the caller checks
    that the user is staff), soft-deleted ones excluded, as a JSON-serialisable dict.

    Totals, costs, times and failure codes cover all time; `daily` covers the last `days`
    days (1 to MAX_DAYS) ending on `now`'s date in the current time zone, oldest first,
    zero-filled. The success rate counts completed, partial and failed runs; the average
    actual cost and the actual/estimate ratio count ended runs (cancelled included). Money
    is a string with 4 decimals; a rate, average or ratio with nothing to measure is null.

    Two queries on PostgreSQL, three elsewhere (the p95 row is read on its own); one more
    only if failures carry codes outside `ErrorCode`.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    generations = _generations_in_scope(owner)
    postgres = connections[generations.db].vendor == "postgresql"

    summary = generations.aggregate(**_summary_aggregates(with_percentile=postgres))
    p95 = summary["time_p95"] if postgres else _nearest_rank_p95(generations, summary["timed"])

    by_status = {value: summary[f"status_{value}"] for value in GenerationStatus.values}
    judged = sum(by_status[status] for status in _JUDGED)
    ended = sum(by_status[status] for status in _ENDED)
    ended_estimate = summary["ended_estimate"] or Decimal(0)
    ended_actual = summary["ended_actual"] or Decimal(0)
    success_rate = round(by_status[GenerationStatus.COMPLETED] / judged, 4) if judged else None
    return {
        "scope": "user" if owner is not None else "all",
        "total": summary["total"],
        "by_status": by_status,
        "by_kind": {value: summary[f"kind_{value}"] for value in GenerationKind.values},
        "success_rate": success_rate,
        "cost": {
            "estimate_total": _money(summary["estimate_total"]),
            "actual_total": _money(summary["actual_total"]),
            "actual_average": _money(ended_actual / ended) if ended else None,
            "actual_vs_estimate": (
                float(_quantize(ended_actual / ended_estimate)) if ended_estimate else None
            ),
        },
        "generation_time": {
            "average_seconds": _seconds(summary["time_average"]),
            "p95_seconds": _seconds(p95),
        },
        "top_failure_codes": _top_failure_codes(generations, summary),
        "daily": _daily(generations, days=days, now=now or timezone.now()),
    }


def _generations_in_scope(owner: User | None) -> QuerySet[Generation]:
    if owner is not None:
        return generations_visible_to(owner)
    return Generation.objects.filter(deleted_at__isnull=True)


def _summary_aggregates(*, with_percentile: bool) -> dict[str, Aggregate]:
    # Every aggregate costs a little per row: counts that others imply (ended, judged) are
    # added up from the status counts instead.
    ended = Q(status__in=sorted(_ENDED))
    aggregates: dict[str, Aggregate] = {
        "total": Count("*"),
        "estimate_total": Sum("cost_estimate"),
        "actual_total": Sum("actual_cost"),
        "ended_estimate": Sum("cost_estimate", filter=ended),
        "ended_actual": Sum("actual_cost", filter=ended),
        "timed": Count("generation_time_seconds"),
        "time_average": Avg("generation_time_seconds"),
        # Failures whose code is outside the taxonomy: when there are any, the top codes
        # need a grouped query of their own.
        "unlisted_codes": Count(
            "pk", filter=_FAILED_WITH_CODE & ~Q(error_code__in=ErrorCode.values)
        ),
    }
    for status in GenerationStatus.values:
        aggregates[f"status_{status}"] = Count("pk", filter=Q(status=status))
    for kind in GenerationKind.values:
        aggregates[f"kind_{kind}"] = Count("pk", filter=Q(kind=kind))
    for code in ErrorCode.values:
        aggregates[f"code_{code}"] = Count(
            "pk", filter=Q(status__in=_FAILURE_STATUSES, error_code=code)
        )
    if with_percentile:
        aggregates["time_p95"] = Percentile("generation_time_seconds", fraction=P95_PERCENT / 100)
    return aggregates


def _nearest_rank_p95(generations: QuerySet[Generation], timed: int) -> float | None:
    """The p95 by nearest rank, for databases without percentile_cont: one row read at
    its offset."""
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


def _top_failure_codes(
    generations: QuerySet[Generation], summary: dict[str, Any]
) -> list[dict[str, Any]]:
    if summary["unlisted_codes"]:
        rows = (
            generations.filter(_FAILED_WITH_CODE)
            .values("error_code")
            .annotate(count=Count("*"))
            .order_by("-count", "error_code")[:TOP_FAILURE_CODES]
        )
        return [{"code": row["error_code"], "count": row["count"]} for row in rows]
    counts = [(code, summary[f"code_{code}"]) for code in ErrorCode.values]
    ranked = sorted((item for item in counts if item[1]), key=lambda item: (-item[1], item[0]))
    return [{"code": code, "count": count} for code, count in ranked[:TOP_FAILURE_CODES]]


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
