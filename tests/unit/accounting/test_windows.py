from __future__ import annotations

import datetime as dt

from router.accounting.windows import EXPIRY_GRACE_S, day, days_of_month, minute, month


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()


def test_utc_calendar_windows() -> None:
    now = ts(2026, 12, 31, 23, 59, 30)
    assert (minute(now).label, minute(now).ends) == ("202612312359", ts(2027, 1, 1))
    assert (day(now).label, day(now).ends) == ("20261231", ts(2027, 1, 1))
    assert (month(now).label, month(now).ends) == ("202612", ts(2027, 1, 1))
    assert month(ts(2026, 2, 10)).ends == ts(2026, 3, 1)
    assert day(now).expire_at == int(ts(2027, 1, 1)) + EXPIRY_GRACE_S


def test_days_of_month() -> None:
    assert len(days_of_month("202602")) == 28
    assert days_of_month("202412")[-1] == "20241231"
