"""The stats page: tiles, server-drawn charts with their numbers, the empty state and the
staff-only `scope=all`."""

import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.test import Client

from generations.tests.factories import (
    AttemptFactory,
    GenerationFactory,
    ItemFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def stats_page(user, query=""):
    response = signed_in(user).get(f"/stats{query}")
    assert response.status_code == 200
    return response.content.decode()


def svgs(html):
    return re.findall(r"<svg xmlns=.*?</svg>", html, re.S)


def parse(svg):
    return ET.fromstring(svg)  # noqa: S314 -- our own output, checked for well-formedness


def tile(html, name):
    match = re.search(rf"<dt>{name}</dt><dd class=\"stat-tile__value\">([^<]*)</dd>", html, re.S)
    assert match, name
    return match.group(1)


def some_generations(owner):
    GenerationFactory(
        owner=owner,
        status="completed",
        actual_cost=Decimal("0.5000"),
        cost_estimate=Decimal("0.4000"),
        generation_time_seconds=12.0,
    )
    failed = GenerationFactory(
        owner=owner,
        status="failed",
        error_code="provider_rejected",
        actual_cost=Decimal("0.1000"),
        cost_estimate=Decimal("0.4000"),
        generation_time_seconds=4.0,
    )
    failed_attempt(failed, "provider_rejected")
    GenerationFactory(owner=owner, kind="image", status="processing")


def failed_attempt(generation, code):
    item = ItemFactory(variant=VariantFactory(generation=generation))
    AttemptFactory(item=item, outcome="failed", error_code=code)


def test_stats_without_data_shows_the_empty_state(owner):
    html = stats_page(owner)

    assert "No data yet" in html
    assert "<svg xmlns" not in html
    assert 'href="/generate"' in html


def test_stats_shows_tiles_and_four_accessible_charts(owner):
    some_generations(owner)

    html = stats_page(owner)

    assert tile(html, "Generations") == "3"
    assert tile(html, "Success rate") == "50%"
    assert tile(html, "Total cost") == "0.6000"
    assert tile(html, "Actual vs estimate") == "75%"
    assert tile(html, "Average time") == "8.0 s"
    charts = svgs(html)
    assert len(charts) == 4
    for svg in charts:
        root = parse(svg)
        assert root.get("role") == "img"
        labelled_by = root.get("aria-labelledby").split()
        assert {f"{element.get('id')}" for element in root} >= set(labelled_by)
    assert "Generations per day, last 30 days" in html
    # Every chart's numbers are also a table.
    assert html.count('<details class="chart__numbers">') == 4
    assert "<code>provider_rejected</code>" in html


def test_daily_chart_has_a_column_per_day_and_segments_for_the_data(owner):
    some_generations(owner)

    daily = svgs(stats_page(owner))[0]

    root = parse(daily)
    ns = "{http://www.w3.org/2000/svg}"
    columns = [g for g in root.iter(f"{ns}g") if g.get("class") == "chart__column"]
    assert len(columns) == 30
    segments = [r for column in columns for r in column.iter(f"{ns}rect")]
    assert {r.get("class") for r in segments} == {
        "chart__bar chart__bar--completed",
        "chart__bar chart__bar--failed",
        "chart__bar chart__bar--other",
    }
    assert "Day created" in daily
    assert "Generations" in daily


def test_a_failure_code_with_markup_is_escaped(owner):
    generation = GenerationFactory(
        owner=owner, status="failed", error_code="<script>alert(1)</script>"
    )
    failed_attempt(generation, "<script>alert(1)</script>")

    html = stats_page(owner)

    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)" in html
    for svg in svgs(html):
        parse(svg)


def test_scope_all_is_ignored_for_non_staff(owner, other_user):
    some_generations(other_user)

    html = stats_page(owner, "?scope=all")

    assert "No data yet" in html
    assert "Your generations" in html
    assert "?scope=all" not in html


def test_staff_can_see_everyones_numbers(owner, other_user, staff_user):
    some_generations(owner)
    some_generations(other_user)

    mine = stats_page(staff_user)
    everyone = stats_page(staff_user, "?scope=all")

    assert "No data yet" in mine
    assert 'href="/stats?scope=all"' in mine
    assert tile(everyone, "Generations") == "6"
    assert "Every user's generations" in everyone
    assert re.search(r'href="/stats\?scope=all" aria-current="page"', everyone)


def test_stats_needs_a_signed_in_user(db):
    response = Client().get("/stats")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
