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


def test_hours_and_the_seconds_a_report_covers() -> None:
    from router.accounting.windows import covered_s, hour, hours_back, hours_of

    t = ts(2026, 12, 3, 10, 30)
    assert hour(t).label == "2026120310"
    assert [w.label for w in hours_back(t, 3)] == ["2026120308", "2026120309", "2026120310"]
    assert [w.label for w in hours_back(ts(2026, 12, 1, 0, 5), 2)] == ["2026113023", "2026120100"]
    assert hours_of("20261203")[0] == "2026120300"
    assert len(hours_of("20261203")) == 24
    assert covered_s(["20261203"], t) == 10.5 * 3600  # today: up to now
    assert covered_s(["20261202", "20261203", "20261204"], t) == 86_400 + 10.5 * 3600  # tomorrow: nothing yet
