from __future__ import annotations

import datetime as dt

from router.accounting.budgets import Ask, Final, applicable, counters, describe, finals
from router.policy.schema import Budget

NOW = dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC).timestamp()
BUDGETS = [
    Budget(name="all", usd_per_day=100),
    Budget(name="each", tenant="*", usd_per_month=10, requests_per_minute=5, on_state_unavailable="closed"),
    Budget(name="a-coding", tenant="a", route="coding", tokens_per_minute=1000),
]


def test_which_budgets_apply_and_whose_counter() -> None:
    got = {(s.budget.name, s.scope) for s in applicable(BUDGETS, "a", "coding")}
    assert got == {("all", "all"), ("each", "t=a"), ("a-coding", "t=a,r=coding")}
    assert {s.budget.name for s in applicable(BUDGETS, "b", "coding")} == {"all", "each"}


def test_counters_per_limit_and_window() -> None:
    cs = counters(applicable(BUDGETS, "a", "coding"), Ask(usd_nano=2_000, tokens=300), NOW, "p:")
    by = {(c.budget, c.limit): c for c in cs}
    assert set(by) == {
        ("all", "usd_per_day"),
        ("each", "usd_per_month"),
        ("each", "requests_per_minute"),
        ("a-coding", "tokens_per_minute"),
    }
    day = by[("all", "usd_per_day")]
    assert (day.key, day.cap, day.amount) == ("p:b:all:all:usd_per_day:20261201", 100 * 10**9, 2_000)
    assert by[("each", "usd_per_month")].key == "p:b:each:t=a:usd_per_month:202612"
    assert by[("each", "requests_per_minute")].amount == 1
    assert by[("each", "requests_per_minute")].fail_closed
    assert by[("a-coding", "tokens_per_minute")].key.endswith(":202612011030")
    uncapped = counters(applicable(BUDGETS, "a", "x"), Ask(1, 1), NOW, "p:", frozenset({"all"}))
    assert next(c for c in uncapped if c.budget == "all").cap is None


def test_settlement_turns_reservations_into_actual_use() -> None:
    cs = counters(applicable(BUDGETS, "a", "coding"), Ask(usd_nano=2_000, tokens=300), NOW, "p:")
    done = {c.key: f for c, f in zip(cs, finals(cs, Ask(usd_nano=500, tokens=120), answered=True), strict=True)}
    assert done["p:b:all:all:usd_per_day:20261201"] == Final(500, 0)
    assert done["p:b:a-coding:t=a,r=coding:tokens_per_minute:202612011030"] == Final(120, 0)
    assert done["p:b:each:t=a:requests_per_minute:202612011030"] == Final(1, 1)  # a request stays a request
    nothing = finals(cs, Ask(usd_nano=500, tokens=120), answered=False)
    gone = {c.key: f for c, f in zip(cs, nothing, strict=True)}
    assert gone["p:b:all:all:usd_per_day:20261201"] == Final(0, 0)  # its money and tokens are freed
    assert gone["p:b:each:t=a:requests_per_minute:202612011030"] == Final(1, 1)
    assert {(c.scope, c.window) for c in cs if c.budget in ("all", "each")} == {
        ("all", "20261201"),
        ("t=a", "202612"),
        ("t=a", "202612011030"),
    }


def test_describe() -> None:
    c = counters(applicable(BUDGETS[:1], "a", "r"), Ask(1, 1), NOW, "p:")[0]
    assert describe(c, 99_500_000_000) == (
        "Budget 'all' is exhausted: $99.5000 of $100.00 per day (UTC) used or reserved by requests in flight."
    )
