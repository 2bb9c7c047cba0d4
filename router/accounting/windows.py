"""UTC calendar windows: the minute, day and month a time falls in, and when each ends."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

UTC = dt.UTC
EXPIRY_GRACE_S = 3600  # counters outlive their window by this, so a late settlement still finds its key


@dataclass(frozen=True, slots=True)
class Window:
    kind: str  # minute | hour | day | month
    label: str  # 202612011830 | 2026120118 | 20261201 | 202612
    ends: float  # unix time

    @property
    def expire_at(self) -> int:
        return int(self.ends) + EXPIRY_GRACE_S


# Unix time has no leap seconds: a UTC minute is exactly floor(t / 60), a UTC day floor(t / 86400). The
# windows are cached by that number (formatting dates cost more than the rest of a budget check).
@functools.lru_cache(maxsize=64)
def _minute(index: int) -> Window:
    t = dt.datetime.fromtimestamp(index * 60, UTC)
    return Window("minute", t.strftime("%Y%m%d%H%M"), (index + 1) * 60.0)


@functools.lru_cache(maxsize=64)
def _day(index: int) -> Window:
    t = dt.datetime.fromtimestamp(index * 86_400, UTC)
    return Window("day", t.strftime("%Y%m%d"), (index + 1) * 86_400.0)


@functools.lru_cache(maxsize=64)
def _hour(index: int) -> Window:
    t = dt.datetime.fromtimestamp(index * 3600, UTC)
    return Window("hour", t.strftime("%Y%m%d%H"), (index + 1) * 3600.0)


@functools.lru_cache(maxsize=64)
def _month(day_index: int) -> Window:
    t = dt.datetime.fromtimestamp(day_index * 86_400, UTC).replace(day=1)
    nxt = t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)
    return Window("month", t.strftime("%Y%m"), nxt.timestamp())


def minute(now: float) -> Window:
    return _minute(int(now // 60))


def day(now: float) -> Window:
    return _day(int(now // 86_400))


def hour(now: float) -> Window:
    return _hour(int(now // 3600))


def hours_back(now: float, n: int) -> list[Window]:
    """The ``n`` UTC hours up to and including the one ``now`` falls in, oldest first."""
    last = int(now // 3600)
    return [_hour(i) for i in range(last - n + 1, last + 1)]


def month(now: float) -> Window:
    return _month(int(now // 86_400))


def days_of_month(label: str) -> list[str]:
    """``202612`` -> ``["20261201", ..., "20261231"]``."""
    first = dt.date(int(label[:4]), int(label[4:6]), 1)
    out, d = [], first
    while d.month == first.month:
        out.append(d.strftime("%Y%m%d"))
        d += dt.timedelta(days=1)
    return out


def day_start(label: str) -> float:
    """Unix time at which the UTC day ``YYYYMMDD`` starts."""
    return dt.datetime(int(label[:4]), int(label[4:6]), int(label[6:8]), tzinfo=UTC).timestamp()


def covered_s(days: Sequence[str], now: float) -> float:
    """Seconds of the UTC days ``days`` that have passed by ``now`` (today counts up to now)."""
    return sum(min(86_400.0, max(0.0, now - day_start(d))) for d in days)


def hours_of(day_label: str) -> list[str]:
    """``20261201`` -> ``["2026120100", ..., "2026120123"]``."""
    return [f"{day_label}{h:02d}" for h in range(24)]
