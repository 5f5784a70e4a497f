"""The SVG chart builders: well-formed XML, one shape per value, escaped labels."""

import xml.etree.ElementTree as ET

import pytest

from history import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg):
    root = ET.fromstring(str(svg))  # noqa: S314 -- our own output, checked for well-formedness
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def with_class(root, tag, css_class):
    return [e for e in root.iter(f"{SVG}{tag}") if css_class in (e.get("class") or "").split()]


def daily(categories, completed, failed):
    return charts.stacked_bar_chart(
        chart_id="daily",
        title="Generations per day",
        description="Completed & failed <per> day",
        categories=categories,
        series=[
            charts.Series("Completed", completed, "completed"),
            charts.Series("Failed", failed, "failed"),
        ],
        x_label="Day",
        y_label="Generations",
    )


def test_stacked_bars_have_a_column_per_category_and_a_segment_per_non_zero_value():
    days = [f"Day {n}" for n in range(30)]
    completed = [n % 3 for n in range(30)]
    failed = [1 if n % 5 == 0 else 0 for n in range(30)]

    root = parse(daily(days, completed, failed))

    assert len(with_class(root, "g", "chart__column")) == 30
    assert len(with_class(root, "rect", "chart__bar--completed")) == (
        sum(1 for v in completed if v) + 1  # the legend swatch
    )
    assert len(with_class(root, "rect", "chart__bar--failed")) == sum(1 for v in failed if v) + 1
    assert root.find(f"{SVG}title").text == "Generations per day"
    assert root.find(f"{SVG}desc").text == "Completed & failed <per> day"
    titles = {t.text for t in root.iter(f"{SVG}text")}
    assert {"Day", "Generations", "Day 29", "Day 22"} <= titles


def test_stacked_segments_stack_to_the_column_total():
    root = parse(daily(["a", "b"], [3, 0], [1, 0]))
    column = with_class(root, "g", "chart__column")[0]
    heights = [float(r.get("height")) for r in column.iter(f"{SVG}rect")]
    assert heights[0] == pytest.approx(3 * heights[1], rel=0.01)
    assert list(with_class(root, "g", "chart__column")[1].iter(f"{SVG}rect")) == []


def test_empty_and_all_zero_data_still_draw_a_valid_chart():
    parse(daily([], [], []))
    parse(daily(["a"], [0], [0]))
    parse(
        charts.area_chart(
            chart_id="cost",
            title="Cost",
            description="None",
            categories=["a", "b"],
            values=[0.0, 0.0],
            x_label="Day",
            y_label="Cost",
        )
    )
    root = parse(charts.horizontal_bar_chart(chart_id="codes", title="t", description="d", bars=[]))
    assert "No data" in {t.text for t in root.iter(f"{SVG}text")}


def test_area_chart_has_a_point_per_value_and_a_line():
    root = parse(
        charts.area_chart(
            chart_id="cost",
            title="Actual cost per day",
            description="d",
            categories=[f"d{n}" for n in range(30)],
            values=[n / 100 for n in range(30)],
            x_label="Day",
            y_label="Actual cost",
        )
    )
    assert len(with_class(root, "circle", "chart__point")) == 30
    assert len(with_class(root, "polyline", "chart__line")) == 1
    assert len(with_class(root, "polygon", "chart__area")) == 1


def test_horizontal_bars_have_a_row_per_bar_scaled_to_the_largest():
    bars = [charts.Bar("Completed", 8, "completed"), charts.Bar("Failed", 2, "failed")]
    root = parse(
        charts.horizontal_bar_chart(chart_id="statuses", title="Mix", description="d", bars=bars)
    )
    rows = with_class(root, "g", "chart__row")
    assert len(rows) == 2
    widths = [float(row.find(f"{SVG}rect").get("width")) for row in rows]
    assert widths[0] == pytest.approx(4 * widths[1])


def test_labels_are_escaped():
    label = "<script>alert('x')</script> & \"more\""
    svg = charts.horizontal_bar_chart(
        chart_id="codes",
        title="Top <failure> codes",
        description="d",
        bars=[charts.Bar(label, 3, "failed")],
    )

    assert "<script>" not in svg
    root = parse(svg)
    row = with_class(root, "g", "chart__row")[0]
    assert row.find(f"{SVG}title").text == f"{label}: 3"
    # The label is shortened on screen and kept whole in the title.
    assert row.find(f"{SVG}text").text.endswith("…")
    assert root.find(f"{SVG}title").text == "Top <failure> codes"


def test_tone_outside_the_known_classes_is_neutralised():
    svg = charts.horizontal_bar_chart(
        chart_id="x", title="t", description="d", bars=[charts.Bar("a", 1, 'x" onload="evil')]
    )
    assert "onload" not in svg
    assert "chart__bar--default" in svg


@pytest.mark.parametrize("chart_id", ["", "Has Space", "1abc", 'a"b'])
def test_bad_chart_ids_are_refused(chart_id):
    with pytest.raises(ValueError, match="chart_id"):
        charts.horizontal_bar_chart(chart_id=chart_id, title="t", description="d", bars=[])


def test_series_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="values"):
        daily(["a", "b"], [1], [0, 0])


def test_output_is_safe_to_put_in_a_template():
    from django.utils.safestring import SafeString

    assert isinstance(daily(["a"], [1], [0]), SafeString)
