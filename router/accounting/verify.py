"""The budgets' invariant, checked (pure): every counter equals the settled use of the leases closed
against it plus what its open leases reserve, and a daily money counter's settled use equals the ledger's
spend for the budget's scope that day. ``router usage --verify``, ``GET /v1/admin/usage/verify`` and the
``router_budget_invariant_difference`` gauge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.accounting.budgets import LIMITS
from router.state.base import SEP, CounterCheck, Snapshot


@dataclass(frozen=True)
class Finding:
    counter: CounterCheck
    ledger: int | None  # the ledger's spend for the scope and day (daily money counters only)
    causes: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return not self.causes


def _unit(limit: str, amount: int) -> str:
    return f"${amount / 1e9:.6f}" if limit.startswith("usd") else f"{amount} {limit.split('_')[0]}"


def ledger_spend(ledger: Mapping[str, int], scope: str) -> int:
    """The nano-dollars a day's ledger counts for a budget's scope (``t=<tenant>``, ``r=<route>``, both,
    or ``all``)."""
    want: dict[str, str] = {}
    if scope != "all":
        for part in scope.split(","):
            name, _, value = part.partition("=")
            want[name] = value
    total = 0
    for field, v in ledger.items():
        parts = field.split(SEP)
        if len(parts) != 4 or parts[3] != "cost_nano":
            continue
        if ("t" in want and parts[0] != want["t"]) or ("r" in want and parts[1] != want["r"]):
            continue
        total += v
    return total


def check(c: CounterCheck, ledger: Mapping[str, int] | None) -> Finding:
    """One counter against what explains it, and each difference with its likely cause."""
    causes = []
    diff = c.difference
    if diff > 0:
        causes.append(
            f"the counter is {_unit(c.limit, diff)} above its settled use and open leases: a settlement or "
            "reservation applied twice, or a lease closed without its counter"
        )
    elif diff < 0:
        causes.append(
            f"the counter is {_unit(c.limit, -diff)} below its settled use and open leases: a release or "
            "reaping applied twice: the budget lets through more than its cap"
        )
    spend = None
    if ledger is not None and c.limit == "usd_per_day":
        spend = ledger_spend(ledger, c.scope)
        if spend > c.settled:
            causes.append(
                f"the ledger counts {_unit(c.limit, spend - c.settled)} more than the budget settled: ledger "
                "rows counted twice, or answers from before the budget existed (it counts from its first "
                "reservation)"
            )
        elif spend < c.settled:
            causes.append(
                f"the ledger counts {_unit(c.limit, c.settled - spend)} less than the budget settled: rows "
                "not flushed yet (each replica flushes every 0.2 s), or lost"
            )
    return Finding(c, spend, tuple(causes))


def verify(snapshot: Snapshot, ledgers: Mapping[str, Mapping[str, int]]) -> list[Finding]:
    """Every live counter checked; ``ledgers``: the days' ledgers (by YYYYMMDD) to hold daily ones to."""
    return [check(c, ledgers.get(c.window) if c.limit == "usd_per_day" else None) for c in snapshot.counters]


def differences(snapshot: Snapshot) -> dict[str, int]:
    """Per limit, the sum of every counter's distance from its settled use and open leases (the gauge);
    0 for every kind of limit without counters (a gauge that reads 0, not one that is missing)."""
    out: dict[str, int] = dict.fromkeys(LIMITS, 0)
    for c in snapshot.counters:
        out[c.limit] = out.get(c.limit, 0) + abs(c.difference)
    return out


def report(snapshot: Snapshot, findings: list[Finding]) -> dict[str, Any]:
    return {
        "exact": all(f.exact for f in findings),
        "counters": len(findings),
        "open_leases": snapshot.open_leases,
        "expired_leases": snapshot.expired_leases,
        "findings": [
            {
                "key": f.counter.key,
                "budget": f.counter.budget,
                "scope": f.counter.scope,
                "limit": f.counter.limit,
                "window": f.counter.window,
                "value": f.counter.value,
                "settled": f.counter.settled,
                "open": f.counter.open,
                "difference": f.counter.difference,
                "ledger": f.ledger,
                "causes": list(f.causes),
            }
            for f in findings
        ],
    }


def render(doc: Mapping[str, Any]) -> str:
    """The report as the CLI prints it: one line per counter, its causes under it."""
    lines = [
        f"{'budget':<20} {'scope':<24} {'limit':<20} {'window':<13} {'counter':>14} {'settled':>14} "
        f"{'open':>10} {'ledger':>14}  state"
    ]
    for f in doc["findings"]:
        ledger = "" if f["ledger"] is None else str(f["ledger"])
        state = "exact" if not f["causes"] else "DIFFERS"
        lines.append(
            f"{f['budget']:<20} {f['scope']:<24} {f['limit']:<20} {f['window']:<13} {f['value']:>14} "
            f"{f['settled']:>14} {f['open']:>10} {ledger:>14}  {state}"
        )
        lines += [f"    {cause}" for cause in f["causes"]]
    lines.append(
        f"{doc['counters']} counters, {doc['open_leases']} open leases ({doc['expired_leases']} expired, to be "
        f"reaped): {'every counter is exact' if doc['exact'] else 'DIFFERENCES above'}"
    )
    return "\n".join(lines)
