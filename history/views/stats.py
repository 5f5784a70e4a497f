"""The stats page: the user's numbers from `generation_stats`, as tiles, server-drawn SVG
charts and tables of the same numbers. Staff may look at everyone's with `?scope=all`;
for anyone else the parameter is ignored."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from generations.errors import ErrorCode
from generations.states import GenerationStatus
from generations.stats import generation_stats
from history import charts
from history.views.access import page_user

DAYS = 30


@dataclass(frozen=True)
class DayRow:
    day: date
    label: str
    total: int
    completed: int
    failed: int
    other: int
    actual_cost: Decimal


@dataclass(frozen=True)
class CountRow:
    code: str
    label: str
    count: int
    share: str


@dataclass(frozen=True)
class Charts:
    daily: SafeString
    statuses: SafeString
    cost: SafeString
    failures: SafeString | None


@login_required
@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    everyone = user.is_staff and request.GET.get("scope") == "all"
    numbers = generation_stats(owner=None if everyone else user, days=DAYS)
    days = _day_rows(numbers["daily"])
    statuses = _status_rows(numbers["by_status"], numbers["total"])
    failures = _failure_rows(numbers["top_failure_codes"])
    context = {
        "numbers": numbers,
        "everyone": everyone,
        "days": DAYS,
        "day_rows": days,
        "status_rows": statuses,
        "failure_rows": failures,
        "success_percent": _percent(numbers["success_rate"]),
        "first_attempt_percent": _percent(numbers["items"]["first_attempt_success_rate"]),
        "final_item_percent": _percent(numbers["items"]["final_success_rate"]),
        "actual_vs_estimate": _percent(numbers["cost"]["actual_vs_estimate"]),
        "charts": _charts(days, statuses, failures, everyone=everyone)
        if numbers["total"]
        else None,
    }
    return render(request, "history/stats.html", context)


def _day_rows(daily: list[dict[str, Any]]) -> list[DayRow]:
    rows = []
    for entry in daily:
        day = date.fromisoformat(entry["date"])
        total, completed, failed = (
            int(entry["total"]),
            int(entry["completed"]),
            int(entry["failed"]),
        )
        rows.append(
            DayRow(
                day=day,
                label=f"{day:%b} {day.day}",
                total=total,
                completed=completed,
                failed=failed,
                other=total - completed - failed,
                actual_cost=Decimal(entry["actual_cost"]),
            )
        )
    return rows


def _status_rows(by_status: dict[str, int], total: int) -> list[CountRow]:
    return [
        CountRow(
            code=status.value,
            label=str(status.label),
            count=by_status.get(status.value, 0),
            share=_percent(by_status.get(status.value, 0) / total if total else None),
        )
        for status in GenerationStatus
    ]


def _failure_rows(top: list[dict[str, Any]]) -> list[CountRow]:
    labels = dict(ErrorCode.choices)
    total = sum(int(item["count"]) for item in top)
    return [
        CountRow(
            code=str(item["code"]),
            label=str(labels.get(item["code"], item["code"])),
            count=int(item["count"]),
            share=_percent(int(item["count"]) / total if total else None),
        )
        for item in top
    ]


def _charts(
    days: list[DayRow], statuses: list[CountRow], failures: list[CountRow], *, everyone: bool
) -> Charts:
    whose = "everyone's" if everyone else "your"
    categories = [row.label for row in days]
    busiest = max(days, key=lambda row: row.total, default=None)
    cost_total = sum((row.actual_cost for row in days), Decimal(0))
    return Charts(
        daily=charts.stacked_bar_chart(
            chart_id="chart-daily",
            title=f"Generations per day, last {len(days)} days",
            description=(
                f"Stacked bars of {whose} generations created each day, split into completed, "
                f"failed and other; {sum(row.total for row in days)} in all"
                + (f", most on {busiest.label} ({busiest.total})." if busiest else ".")
            ),
            categories=categories,
            series=[
                charts.Series("Completed", [row.completed for row in days], "completed"),
                charts.Series("Failed", [row.failed for row in days], "failed"),
                charts.Series("Other", [row.other for row in days], "other"),
            ],
            x_label="Day created",
            y_label="Generations",
        ),
        statuses=charts.horizontal_bar_chart(
            chart_id="chart-statuses",
            title="Status mix",
            description="How many generations are in each status: "
            + ", ".join(f"{row.label} {row.count}" for row in statuses)
            + ".",
            bars=[
                charts.Bar(row.label, row.count, row.code, f"{row.count} ({row.share})")
                for row in statuses
            ],
        ),
        cost=charts.area_chart(
            chart_id="chart-cost",
            title=f"Actual cost per day, last {len(days)} days",
            description=f"Line of the actual cost of {whose} generations created each day; "
            f"{cost_total} in all.",
            categories=categories,
            values=[float(row.actual_cost) for row in days],
            x_label="Day created",
            y_label="Actual cost",
        ),
        failures=charts.horizontal_bar_chart(
            chart_id="chart-failures",
            title="Top failure codes",
            description="Failed attempts by error code, retried or not: "
            + ", ".join(f"{row.code} {row.count}" for row in failures)
            + ".",
            bars=[charts.Bar(row.code, row.count, "failed") for row in failures],
        )
        if failures
        else None,
    )


def _percent(ratio: float | None) -> str:
    """0.8333 as "83.3%"; None (nothing to measure) as an em dash."""
    if ratio is None:
        return "—"
    return f"{ratio * 100:.1f}".removesuffix(".0") + "%"
