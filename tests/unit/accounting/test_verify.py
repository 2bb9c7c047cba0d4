"""The budgets' invariant checked: a counter against its settled use and open leases, and a daily money
counter's settled use against the ledger, each difference with its cause."""

from __future__ import annotations

from router.accounting.verify import check, differences, ledger_spend, render, report, verify
from router.state.base import CounterCheck, Snapshot

LEDGER = {
    "acme\tchat\tpool\tcost_nano": 700,
    "acme\tcode\tapi\tcost_nano": 300,
    "beta\tchat\tpool\tcost_nano": 50,
    "acme\tchat\tpool\trequests": 9,
}


def counter(value: int, settled: int, open_: int, limit: str = "usd_per_day", scope: str = "t=acme") -> CounterCheck:
    return CounterCheck(f"p:b:day:{scope}:{limit}:20261203", "day", scope, limit, "20261203", value, settled, open_)


def test_the_ledger_spend_of_a_scope() -> None:
    assert ledger_spend(LEDGER, "t=acme") == 1000
    assert ledger_spend(LEDGER, "t=acme,r=chat") == 700
    assert ledger_spend(LEDGER, "r=chat") == 750
    assert ledger_spend(LEDGER, "all") == 1050


def test_an_exact_counter_has_no_cause() -> None:
    found = check(counter(1200, 1000, 200), LEDGER)
    assert found.exact
    assert found.ledger == 1000


def test_each_difference_names_its_likely_cause() -> None:
    twice = check(counter(1300, 1000, 200), LEDGER)
    assert "above its settled use and open leases" in twice.causes[0]
    freed_twice = check(counter(900, 1000, 200), LEDGER)
    assert "lets through more than its cap" in freed_twice.causes[0]
    ledger_more = check(counter(1100, 900, 200), LEDGER)
    assert ledger_more.causes == (ledger_more.causes[0],)
    assert "ledger counts $0.000000 more" in ledger_more.causes[0]
    assert "counted twice" in ledger_more.causes[0]
    ledger_less = check(counter(1300, 1100, 200), LEDGER)
    assert "not flushed yet" in ledger_less.causes[0]
    rate = check(counter(5, 5, 0, "requests_per_minute"), None)
    assert rate.exact
    assert rate.ledger is None  # minute counters have no ledger to hold to


def test_the_report_and_the_gauge() -> None:
    snap = Snapshot((counter(1200, 1000, 200), counter(7, 4, 1, "requests_per_minute", "all")), 3, 1)
    findings = verify(snap, {"20261203": LEDGER})
    doc = report(snap, findings)
    assert not doc["exact"]
    assert (doc["open_leases"], doc["expired_leases"]) == (3, 1)
    assert [f["difference"] for f in doc["findings"]] == [0, 2]
    assert differences(snap) == {"usd_per_day": 0, "usd_per_month": 0, "tokens_per_minute": 0, "requests_per_minute": 2}
    text = render(doc)
    assert "DIFFERS" in text
    assert "DIFFERENCES above" in text
