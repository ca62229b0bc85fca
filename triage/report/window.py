"""The report's time window and its buckets (days, or hours for windows under two days), all in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from triage.routing.timing import parse_duration

HOURLY_BELOW = timedelta(days=2)
DAY_FORMAT = "%Y-%m-%d"
HOUR_FORMAT = "%Y-%m-%dT%H:00"


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def last(cls, text: str, now: datetime | None = None) -> Window:
        """The window ending now and reaching back `text` (30m, 12h, 7d, 2w); ValueError when invalid."""
        length = parse_duration(text)
        if length <= timedelta(0):
            raise ValueError(f"{text!r} is not a positive duration")
        until = now or datetime.now(UTC)
        return cls(since=until - length, until=until)

    @property
    def hourly(self) -> bool:
        return self.until - self.since < HOURLY_BELOW

    @property
    def bucket(self) -> str:
        return "hour" if self.hourly else "day"

    def label(self, moment: datetime) -> str:
        """The bucket a moment falls in, spelled as the SQL bucket expression spells it."""
        return moment.astimezone(UTC).strftime(HOUR_FORMAT if self.hourly else DAY_FORMAT)

    def labels(self) -> list[str]:
        """Every bucket from `since` to `until`, so quiet periods show as zeros, not as gaps."""
        step = timedelta(hours=1) if self.hourly else timedelta(days=1)
        start = self.since.astimezone(UTC)
        start = start.replace(minute=0, second=0, microsecond=0)
        if not self.hourly:
            start = start.replace(hour=0)
        labels = []
        while start <= self.until:
            labels.append(self.label(start))
            start += step
        return labels

    def describe(self) -> str:
        """`7 days`, `12 hours`, `30 minutes`: the window's length for people."""
        seconds = round((self.until - self.since).total_seconds())
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0:
                return _plural(seconds // size, unit)
        return _plural(seconds, "second")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"
