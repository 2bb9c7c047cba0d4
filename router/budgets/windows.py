"""UTC calendar windows: the minute, day and month a time falls in, and when each ends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

UTC = dt.UTC
EXPIRY_GRACE_S = 3600  # counters outlive their window by this, so a late settlement still finds its key


@dataclass(frozen=True, slots=True)
class Window:
    kind: str  # minute | day | month
    label: str  # 202612011830 | 20261201 | 202612
    ends: float  # unix time

    @property
    def expire_at(self) -> int:
        return int(self.ends) + EXPIRY_GRACE_S


def minute(now: float) -> Window:
    t = dt.datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0)
    return Window("minute", t.strftime("%Y%m%d%H%M"), (t + dt.timedelta(minutes=1)).timestamp())


def day(now: float) -> Window:
    t = dt.datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window("day", t.strftime("%Y%m%d"), (t + dt.timedelta(days=1)).timestamp())


def month(now: float) -> Window:
    t = dt.datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)
    return Window("month", t.strftime("%Y%m"), nxt.timestamp())


def days_of_month(label: str) -> list[str]:
    """``202612`` -> ``["20261201", ..., "20261231"]``."""
    first = dt.date(int(label[:4]), int(label[4:6]), 1)
    out, d = [], first
    while d.month == first.month:
        out.append(d.strftime("%Y%m%d"))
        d += dt.timedelta(days=1)
    return out
