"""Durations (`30m`, `4h`, `7d`) and quiet hours for routes."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Alertmanager's (Prometheus') durations: one or more number-unit parts: 30s, 1h30m, 500ms
DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|[smhdwy]))+$")
PART = re.compile(r"(\d+(?:\.\d+)?)(ms|[smhdwy])")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
LONGEST_S = 100 * UNITS["y"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h30m`, `7d`, `500ms`; anything else (a bare number, `-5s`, `soon`) is refused."""
    compact = re.sub(r"\s+", "", text) if isinstance(text, str) else None  # `10 s`, `1h 30m` too
    if not compact or not DURATION.match(compact):
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h30m, 7d or 2w")
    seconds = sum(float(number) * UNITS[unit] for number, unit in PART.findall(compact))
    if seconds > LONGEST_S:  # a typo (10000y); the dates it would reach back to do not exist
        raise ValueError(f"{text!r} is longer than 100y")
    return timedelta(seconds=seconds)


class QuietHours(BaseModel):
    """A daily window in which a route's deliveries wait; they go out when the window ends."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time
    timezone: str = "UTC"
    days: list[str] = Field(default_factory=lambda: list(DAYS), description="days the window starts on")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("days")
    @classmethod
    def _known_days(cls, value: list[str]) -> list[str]:
        unknown = [day for day in value if day.lower()[:3] not in DAYS]
        if unknown:
            raise ValueError(f"unknown day(s) {unknown}; use {', '.join(DAYS)}")
        return [day.lower()[:3] for day in value]

    def deferred_until(self, now: datetime) -> datetime | None:
        """The end of the quiet window `now` falls in (an aware datetime), or None outside it."""
        local = now.astimezone(ZoneInfo(self.timezone))
        length = _minutes(self.end) - _minutes(self.start)
        if length <= 0:
            length += 24 * 60  # the window runs past midnight
        for days_back in (0, 1):
            day = local.date() - timedelta(days=days_back)
            if DAYS[day.weekday()] not in self.days:
                continue
            opened = datetime.combine(day, self.start, tzinfo=local.tzinfo)
            closes = opened + timedelta(minutes=length)
            if opened <= local < closes:
                return closes
        return None


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute
