"""The charts' value axes: gridlines on round numbers a reader can tell apart."""

import math
import re

import pytest

from triage.report.svg import COUNTS, LEFT, MONEY, SHARES, Segment, columns, lines, ticks

AXIS_LABEL = re.compile(rf'<text x="{LEFT - 6}" y="[\d.]+" text-anchor="end">([^<]*)</text>')


def axis_labels(svg: str) -> list[str]:
    return AXIS_LABEL.findall(svg)


def test_a_count_of_one_is_an_axis_of_whole_numbers():
    chart = columns(["2026-11-19", "2026-11-20"], [Segment("tokens", [1, 0], "#000")])
    assert axis_labels(chart) == ["0", "1"]  # was 0 0 0 1 1


def test_money_is_on_an_axis_in_cents():
    chart = columns(["2026-11-20"], [Segment("cost", [0.5], "#000")], axis=MONEY)
    assert axis_labels(chart) == ["$0.00", "$0.10", "$0.20", "$0.30", "$0.40", "$0.50"]
    tiny = columns(["2026-11-20"], [Segment("cost", [0.0013], "#000")], axis=MONEY)
    assert axis_labels(tiny) == ["$0.00", "$0.01"]


def test_a_share_axis_reads_in_percent():
    chart = lines(["2026-11-20"], [Segment("degraded", [0.027], "#000")], axis=SHARES)
    assert axis_labels(chart) == ["0%", "1%", "2%", "3%"]
    small = lines(["2026-11-20"], [Segment("degraded", [0.004], "#000")], axis=SHARES)
    assert axis_labels(small) == ["0%", "0.1%", "0.2%", "0.3%", "0.4%"]


@pytest.mark.parametrize("axis", [COUNTS, MONEY, SHARES], ids=["counts", "money", "shares"])
@pytest.mark.parametrize("maximum", [*range(1, 120), 4_623, 20_000, 0.07, 0.33, 0.999, 12.34, 987.6])
def test_every_axis_steps_by_one_two_or_five_and_labels_each_gridline_differently(axis, maximum):
    gridlines = ticks(maximum, axis.unit)
    labels = [axis.label(value) for value in gridlines]
    assert len(set(labels)) == len(labels), labels
    assert gridlines[0] == 0 and gridlines[-1] >= maximum and 2 <= len(gridlines) <= 6, gridlines
    step = gridlines[1]
    leading = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert step >= axis.unit and any(math.isclose(leading, m) for m in (1, 2, 5)), gridlines
    assert gridlines[-2] < maximum  # no empty gridline above the data
    if axis is COUNTS:
        assert all(value == int(value) for value in gridlines)


def test_nothing_to_show_is_still_an_axis():
    assert ticks(0) == [0.0, 1.0]
    assert axis_labels(columns(["2026-11-20"], [Segment("x", [0], "#000")])) == ["0", "1"]
