"""Server-side SVG charts for the stats page: pure functions from numbers to an SVG string
that is safe to put in a page.

Every label is escaped, every number is written by `_n`, so the output is well-formed XML.
Each chart is an image to assistive technology (`role="img"`, labelled by its `<title>`
and `<desc>`); the page also gives its numbers as a table. Colours come from CSS classes
(`chart__bar--<tone>`), so the charts follow the stylesheet.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 420
PLOT_HEIGHT = 220
ROW_HEIGHT = 26
LABEL_CHARS = 22
_CHART_ID = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
# Plot margins of the charts with axes: room for the legend above, tick labels and the
# axis titles on the left and below.
_TOP, _RIGHT, _BOTTOM, _LEFT = 30, 8, 44, 60
_Y_TITLE_X = 10


@dataclass(frozen=True)
class Series:
    """One stacked layer: a value per category, drawn with `chart__bar--<tone>`."""

    name: str
    values: Sequence[float]
    tone: str


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart."""

    label: str
    value: float
    tone: str = "default"
    # Shown after the bar; the value itself when empty.
    text: str = ""


def stacked_bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    tick_every: int = 7,
) -> SafeString:
    """Vertical bars, one column per category with a segment per non-zero series value,
    stacked bottom-up in series order. Every `tick_every`-th category is labelled on the x
    axis, counting back from the last one."""
    _check(chart_id, series, len(categories))
    totals = [sum(layer.values[i] for layer in series) for i in range(len(categories))]
    axis = _Axis.of(max(totals, default=0.0), integer=True)
    plot_width = WIDTH - _LEFT - _RIGHT
    plot_height = PLOT_HEIGHT - _TOP - _BOTTOM
    band = plot_width / max(len(categories), 1)
    bar_width = max(band * 0.7, 1.0)
    parts = [*_frame(axis, plot_height), _legend(series)]
    for index, category in enumerate(categories):
        x = _LEFT + index * band + (band - bar_width) / 2
        base = float(_TOP + plot_height)
        detail = ", ".join(f"{_n(layer.values[index])} {layer.name.lower()}" for layer in series)
        column = [f'<g class="chart__column"><title>{escape(category)}: {escape(detail)}</title>']
        for layer in series:
            value = layer.values[index]
            if value <= 0:
                continue
            height = value / axis.top * plot_height
            base -= height
            column.append(
                f'<rect class="chart__bar chart__bar--{_tone(layer.tone)}" x="{_n(x)}" '
                f'y="{_n(base)}" width="{_n(bar_width)}" height="{_n(height)}"/>'
            )
        column.append("</g>")
        parts.append("".join(column))
        if (len(categories) - 1 - index) % max(tick_every, 1) == 0:
            parts.append(
                f'<text class="chart__tick" x="{_n(x + bar_width / 2)}" '
                f'y="{_n(_TOP + plot_height + 14)}" text-anchor="middle">{escape(category)}</text>'
            )
    parts.append(_axis_titles(x_label, y_label, plot_height))
    return _svg(chart_id, title, description, PLOT_HEIGHT, parts)


def area_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    values: Sequence[float],
    x_label: str,
    y_label: str,
    tick_every: int = 7,
    value_decimals: int = 4,
) -> SafeString:
    """A line over a shaded area, one point per category, with labelled axes."""
    if len(values) != len(categories):
        raise ValueError("values and categories differ in length")
    _check(chart_id, [], len(categories))
    axis = _Axis.of(max(values, default=0.0), integer=False)
    plot_width = WIDTH - _LEFT - _RIGHT
    plot_height = PLOT_HEIGHT - _TOP - _BOTTOM
    band = plot_width / max(len(categories), 1)
    baseline = _TOP + plot_height
    points = [
        (_LEFT + band * (index + 0.5), baseline - value / axis.top * plot_height)
        for index, value in enumerate(values)
    ]
    parts = _frame(axis, plot_height)
    if points:
        line = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        first_x, last_x = points[0][0], points[-1][0]
        parts.append(
            f'<polygon class="chart__area" points="{_n(first_x)},{_n(baseline)} {line} '
            f'{_n(last_x)},{_n(baseline)}"/>'
        )
        parts.append(f'<polyline class="chart__line" points="{line}"/>')
    for index, ((x, y), category) in enumerate(zip(points, categories, strict=True)):
        parts.append(
            f'<circle class="chart__point" cx="{_n(x)}" cy="{_n(y)}" r="2.5">'
            f"<title>{escape(category)}: {_n(values[index], value_decimals)}</title></circle>"
        )
        if (len(categories) - 1 - index) % max(tick_every, 1) == 0:
            parts.append(
                f'<text class="chart__tick" x="{_n(x)}" y="{_n(baseline + 14)}" '
                f'text-anchor="middle">{escape(category)}</text>'
            )
    parts.append(_axis_titles(x_label, y_label, plot_height))
    return _svg(chart_id, title, description, PLOT_HEIGHT, parts)


def horizontal_bar_chart(
    *, chart_id: str, title: str, description: str, bars: Sequence[Bar]
) -> SafeString:
    """One labelled row per bar, lengths relative to the largest value, each value written
    after its bar. A label longer than LABEL_CHARS is shortened on screen; the full label
    stays in the row's `<title>`."""
    _check(chart_id, [], 0)
    label_width, value_width = 170, 70
    track = WIDTH - label_width - value_width
    largest = max((bar.value for bar in bars), default=0.0)
    height = ROW_HEIGHT * max(len(bars), 1) + 8
    parts = []
    for index, bar in enumerate(bars):
        y = 4 + index * ROW_HEIGHT
        length = bar.value / largest * track if largest > 0 else 0.0
        shown = bar.label if len(bar.label) <= LABEL_CHARS else bar.label[: LABEL_CHARS - 1] + "…"
        text = bar.text or _n(bar.value)
        parts.append(
            f'<g class="chart__row"><title>{escape(bar.label)}: {escape(text)}</title>'
            f'<text class="chart__label" x="{label_width - 8}" y="{_n(y + ROW_HEIGHT / 2 + 4)}" '
            f'text-anchor="end">{escape(shown)}</text>'
            f'<rect class="chart__bar chart__bar--{_tone(bar.tone)}" x="{label_width}" '
            f'y="{_n(y + 4)}" width="{_n(length)}" height="{ROW_HEIGHT - 8}" rx="3"/>'
            f'<text class="chart__value" x="{_n(label_width + length + 6)}" '
            f'y="{_n(y + ROW_HEIGHT / 2 + 4)}">{escape(text)}</text></g>'
        )
    if not bars:
        parts.append(
            f'<text class="chart__label" x="{WIDTH / 2}" y="{ROW_HEIGHT / 2 + 6}" '
            'text-anchor="middle">No data</text>'
        )
    return _svg(chart_id, title, description, height, parts)


@dataclass(frozen=True)
class _Axis:
    """A y axis from 0 to `top` in ticks of `step`: round numbers just above the data."""

    top: float
    step: float
    decimals: int

    @classmethod
    def of(cls, largest: float, *, integer: bool) -> "_Axis":
        step = _nice(largest / 4) if largest > 0 else 1.0
        if integer:
            step = max(1.0, float(math.ceil(step)))
        top = max(math.ceil(largest / step - 1e-9), 1) * step
        decimals = 0 if integer or step >= 1 else max(0, -math.floor(math.log10(step)))
        return cls(top=top, step=step, decimals=decimals)

    def ticks(self) -> list[float]:
        count = round(self.top / self.step)
        return [self.step * index for index in range(count + 1)]


def _nice(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least `value`."""
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power


def _frame(axis: _Axis, plot_height: int) -> list[str]:
    """Gridlines with their tick labels, and the baseline."""
    parts = []
    for tick in axis.ticks():
        y = _TOP + plot_height - tick / axis.top * plot_height
        parts.append(
            f'<line class="chart__grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" '
            f'y1="{_n(y)}" y2="{_n(y)}"/>'
            f'<text class="chart__tick" x="{_LEFT - 6}" y="{_n(y + 4)}" '
            f'text-anchor="end">{_n(tick, axis.decimals)}</text>'
        )
    baseline = _TOP + plot_height
    parts.append(
        f'<line class="chart__axis" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" '
        f'y1="{baseline}" y2="{baseline}"/>'
    )
    return parts


def _legend(series: Sequence[Series]) -> str:
    parts = ['<g class="chart__legend">']
    x = float(_LEFT)
    for layer in series:
        parts.append(
            f'<rect class="chart__bar chart__bar--{_tone(layer.tone)} chart__swatch" '
            f'x="{_n(x)}" y="8" width="10" height="10" rx="2"/>'
            f'<text class="chart__label" x="{_n(x + 14)}" y="17">{escape(layer.name)}</text>'
        )
        x += 14 + 7 * len(layer.name) + 16
    parts.append("</g>")
    return "".join(parts)


def _axis_titles(x_label: str, y_label: str, plot_height: int) -> str:
    middle_y = _TOP + plot_height / 2
    return (
        f'<text class="chart__axis-title" x="{_n(_LEFT + (WIDTH - _LEFT - _RIGHT) / 2)}" '
        f'y="{PLOT_HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="chart__axis-title" x="{_Y_TITLE_X}" y="{_n(middle_y)}" '
        f'text-anchor="middle" transform="rotate(-90 {_Y_TITLE_X} {_n(middle_y)})">'
        f"{escape(y_label)}</text>"
    )


def _svg(
    chart_id: str, title: str, description: str, height: int, parts: Sequence[str]
) -> SafeString:
    return mark_safe(  # noqa: S308 -- every label above goes through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart__svg" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
        f"{''.join(parts)}</svg>"
    )


def _check(chart_id: str, series: Sequence[Series], length: int) -> None:
    if not _CHART_ID.match(chart_id):
        raise ValueError(f"chart_id must be a lowercase slug, not {chart_id!r}")
    for layer in series:
        if len(layer.values) != length:
            raise ValueError(f"series {layer.name!r} has {len(layer.values)} values, not {length}")


def _tone(tone: str) -> str:
    """A tone as a class modifier: anything but a slug becomes "default"."""
    return tone if re.fullmatch(r"[a-z_-]{1,30}", tone) else "default"


def _n(value: float, decimals: int = 1) -> str:
    """A number for SVG: fixed decimals, trailing zeros dropped."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text
