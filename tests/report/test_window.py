from datetime import UTC, datetime

import pytest

from triage.report.window import Window

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "described", "buckets"),
    [
        ("30m", "30 minutes", ["2026-11-20T12:00"]),
        ("12h", "12 hours", [f"2026-11-20T{hour:02d}:00" for hour in range(0, 13)]),
        (
            "1d",
            "1 day",
            [f"2026-11-19T{hour}:00" for hour in range(12, 24)]
            + [f"2026-11-20T{hour:02d}:00" for hour in range(0, 13)],
        ),
        ("2d", "2 days", ["2026-11-18", "2026-11-19", "2026-11-20"]),
        ("2w", "14 days", [f"2026-11-{day:02d}" for day in range(6, 21)]),
    ],
)
def test_a_window_reaches_back_from_now_in_whole_buckets(since: str, described: str, buckets: list[str]):
    window = Window.last(since, now=NOW)
    assert window.describe() == described
    assert window.labels() == buckets


@pytest.mark.parametrize("since", ["", "week", "7", "0h", "-1d", "7 days"])
def test_anything_else_is_refused(since: str):
    with pytest.raises(ValueError, match="duration"):
        Window.last(since, now=NOW)
