from __future__ import annotations

import pytest

from router.accounting.usage import days_for, group_keys, render, report
from router.errors import InvalidRequest
from router.state.base import LedgerEntry, add_ledger


def test_report_groups_and_totals() -> None:
    ledgers: dict[str, dict[str, int]] = {}
    add_ledger(ledgers, LedgerEntry("20261201", "a", "coding", "frontier", 1, 10, 20, 3_000, 9_000))
    add_ledger(ledgers, LedgerEntry("20261201", "a", "extraction", "pool", 2, 10, 20, 1_000, 8_000, 1))
    add_ledger(ledgers, LedgerEntry("20261202", "b", "coding", "frontier", 1, 1, 1, 2_000, 2_000))
    by_tenant = report(ledgers, ("tenant",))
    assert [r["tenant"] for r in by_tenant["rows"]] == ["a", "b"]
    a = by_tenant["rows"][0]
    assert (a["requests"], a["cost_usd"], a["baseline_cost_usd"], a["cache_hits"]) == (3, 4e-6, 17e-6, 1)
    assert a["savings_usd"] == pytest.approx(13e-6)
    assert by_tenant["total"]["requests"] == 4
    assert by_tenant["total"]["savings_percent"] == pytest.approx(100 * 13 / 19, abs=0.01)
    full = report(ledgers, ("tenant", "route", "cluster"))
    assert len(full["rows"]) == 3
    text = render(full)
    assert text.splitlines()[0].startswith("tenant  route       cluster   requests  tokens in")
    assert "TOTAL" in text.splitlines()[-1]


def test_parameters_are_checked() -> None:
    assert days_for("day", "20261201", 0) == ["20261201"]
    assert len(days_for("month", "202612", 0)) == 31
    for window, date, param in (("day", "2026-12-01", "date"), ("day", "20261232", "date"), ("year", None, "window")):
        with pytest.raises(InvalidRequest) as err:
            days_for(window, date, 0)
        assert err.value.param == param
    assert group_keys(None) == ("tenant", "route", "cluster")
    with pytest.raises(InvalidRequest):
        group_keys("tenant,colour")
