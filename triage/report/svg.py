"""Inline SVG charts drawn in Python, so the report page needs no script, font or network.

Every piece of text passes through `html.escape`: labels are customer- or operator-supplied (channels,
categories, receiver names). Each mark carries a <title>, which browsers show as a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 10, 28
MAX_X_LABELS = 10
LABEL_CHARS = 22  # row labels of bar charts longer than this are cut (the tooltip has them whole)

Format = Callable[[float], str]


@dataclass(frozen=True)
class Segment:
    """One named series (a stack layer, a line, a bar of a group) and its colour."""

    name: str
    values: Sequence[float]
    color: str


def count(value: float) -> str:
    return f"{value:,.0f}"


def share(value: float) -> str:
    return f"{value:.0%}" if value >= 0.1 or value == 0 else f"{value:.1%}"


def percent_tick(value: float) -> str:
    """An axis label: `5%`, `0.5%` (a tooltip's `share` keeps one decimal under 10%)."""
    return f"{round(value * 100, 1):g}%"


def cents(value: float) -> str:
    return f"${value:,.2f}"


@dataclass(frozen=True)
class Axis:
    """How a value axis is labelled: `unit` is its finest step (1 for whole counts, 0.01 for cents)."""

    unit: float
    label: Format


COUNTS = Axis(1.0, count)
MONEY = Axis(0.01, cents)
SHARES = Axis(0.001, percent_tick)
STEPS = 5  # at most this many gridlines above 0


def ticks(maximum: float, unit: float = 1.0) -> list[float]:
    """The gridlines of a value axis from 0: a step of 1, 2 or 5 times a power of ten and never finer than
    `unit`, at most STEPS of them, the last at or above `maximum` (Heckbert's nice numbers). For counts
    up to 1 that is 0 and 1, never 0, 0.25, 0.5."""
    if maximum <= 0:
        return [0.0, unit]
    magnitude = 10 ** math.floor(math.log10(maximum / STEPS))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude * STEPS >= maximum * (1 - 1e-9))
    step = max(step, unit)
    steps = math.ceil(maximum / step * (1 - 1e-9))
    return [round(i * step, 12) for i in range(steps + 1)]


def legend(segments: Sequence[Segment]) -> str:
    items = "".join(
        f'<span><i style="background:{segment.color}"></i>{escape(segment.name)}</span>'
        for segment in segments
    )
    return f'<div class="legend">{items}</div>'


def columns(
    buckets: Sequence[str],
    segments: Sequence[Segment],
    *,
    percent: bool = False,
    value_format: Format = count,
    axis: Axis = COUNTS,
    height: int = 200,
) -> str:
    """Stacked columns, one per bucket; with `percent`, each column shows its segments' shares."""
    totals = [sum(segment.values[i] for segment in segments) for i in range(len(buckets))]
    if percent:
        chart = _Frame(height, [0.0, 0.25, 0.5, 0.75, 1.0], share)
    else:
        chart = _Frame(height, ticks(max(totals, default=0), axis.unit), axis.label)
    slot = chart.plot_width / max(len(buckets), 1)
    marks = []
    for i, bucket in enumerate(buckets):
        if not totals[i]:
            continue
        scale = 1 / totals[i] if percent else 1.0
        base = 0.0
        for segment in segments:
            value = segment.values[i]
            if not value:
                continue
            y_top, y_bottom = chart.y(base + value * scale), chart.y(base)
            tip = f"{bucket} · {segment.name}: {value_format(value)}"
            if percent:
                tip += f" ({share(value * scale)})"
            marks.append(
                f'<rect x="{LEFT + i * slot + slot * 0.1:.1f}" y="{y_top:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{segment.color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += value * scale
    return chart.svg(marks, _x_labels(buckets, slot, chart.height))


def lines(
    buckets: Sequence[str],
    segments: Sequence[Segment],
    *,
    value_format: Format = count,
    axis: Axis = COUNTS,
    height: int = 160,
) -> str:
    """One line per segment, a dot per bucket."""
    top = max((max(s.values, default=0) for s in segments), default=0)
    chart = _Frame(height, ticks(top, axis.unit), axis.label)
    slot = chart.plot_width / max(len(buckets), 1)
    marks = []
    for segment in segments:
        points = [(LEFT + (i + 0.5) * slot, chart.y(value)) for i, value in enumerate(segment.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        marks.append(f'<polyline points="{path}" fill="none" stroke="{segment.color}" stroke-width="2"/>')
        for (x, y), bucket, value in zip(points, buckets, segment.values, strict=True):
            tip = escape(f"{bucket} · {segment.name}: {value_format(value)}")
            marks.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{segment.color}">'
                f"<title>{tip}</title></circle>"
            )
    return chart.svg(marks, _x_labels(buckets, slot, chart.height))


def bars(
    rows: Sequence[str],
    segments: Sequence[Segment],
    *,
    stacked: bool = True,
    value_format: Format = count,
    notes: Sequence[str] = (),
) -> str:
    """Horizontal bars, one row per label: segments stacked, or side by side when not `stacked`.

    `notes` are printed after each row's bar (e.g. a share)."""
    label_width, row_height = 150, 22
    lanes = 1 if stacked else len(segments)
    totals = [
        sum(s.values[r] for s in segments) if stacked else max(s.values[r] for s in segments)
        for r in range(len(rows))
    ]
    top = ticks(max(totals, default=0), unit=0.001)[-1]  # the scale alone: no axis is drawn
    plot_width = WIDTH - label_width - 90
    height = TOP + len(rows) * row_height + 6
    marks = []
    for r, row in enumerate(rows):
        y_row = TOP + r * row_height
        text = row if len(row) <= LABEL_CHARS else row[: LABEL_CHARS - 1] + "…"
        marks.append(
            f'<text x="{label_width - 6}" y="{y_row + 15}" text-anchor="end">{escape(text)}'
            f"<title>{escape(row)}</title></text>"
        )
        start = 0.0
        for lane, segment in enumerate(segments):
            value = segment.values[r]
            if value:
                bar_height = (row_height - 6) / lanes
                y = y_row + 3 + (0 if stacked else lane * bar_height)
                width = max(value / top * plot_width, 1.0)
                tip = escape(f"{row} · {segment.name}: {value_format(value)}")
                marks.append(
                    f'<rect x="{label_width + start:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{bar_height:.1f}" fill="{segment.color}"><title>{tip}</title></rect>'
                )
                if stacked:
                    start += width
        if r < len(notes):
            marks.append(
                f'<text x="{label_width + totals[r] / top * plot_width + 6:.1f}" y="{y_row + 15}" '
                f'class="note">{escape(notes[r])}</text>'
            )
    return _svg(height, marks)


@dataclass(frozen=True)
class _Frame:
    """The axes of a time chart: a value scale from 0 to the last of `gridlines`, labelled by `label`."""

    height: int
    gridlines: list[float]
    label: Format

    @property
    def top(self) -> float:
        return self.gridlines[-1]

    @property
    def plot_width(self) -> float:
        return WIDTH - LEFT - RIGHT

    def y(self, value: float) -> float:
        plot_height = self.height - TOP - BOTTOM
        return TOP + plot_height * (1 - value / self.top)

    def svg(self, marks: list[str], x_labels: list[str]) -> str:
        grid = []
        for value in self.gridlines:
            y = self.y(value)
            grid.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
            tick = escape(self.label(value))
            grid.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
        return _svg(self.height, [*grid, *marks, *x_labels])


def _x_labels(buckets: Sequence[str], slot: float, height: int) -> list[str]:
    """At most MAX_X_LABELS bucket names under the axis, without the year."""
    every = math.ceil(len(buckets) / MAX_X_LABELS) or 1
    return [
        f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{height - 8}" text-anchor="middle">'
        f"{escape(bucket[5:].replace('T', ' '))}</text>"
        for i, bucket in enumerate(buckets)
        if i % every == 0
    ]


def _svg(height: int, parts: list[str]) -> str:
    body = "".join(parts)
    return f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img">{body}</svg>'
