"""Which budgets apply to a request, and the counters a reservation touches (pure).

Each limit of a budget is a counter per UTC window, named by the budget, its scope (the tenant and/or
route it was kept for) and the window: ``usd_per_day`` counts nano-dollars per day, ``usd_per_month`` per
month, ``tokens_per_minute`` prompt plus completion tokens per minute, ``requests_per_minute`` requests.
A reservation adds the request's maximum to every counter at once if each stays within its cap; a
settlement adds the difference to the actual use afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from router.accounting import windows
from router.policy.schema import Budget


@dataclass(frozen=True, slots=True)
class Final:
    """What a lease's counter ends at: ``final`` when the request is settled, ``unanswered`` when it got no
    answer (released, or reaped: a request still counts as a request; its money and tokens are freed)."""

    final: int
    unanswered: int


LIMITS = ("usd_per_day", "usd_per_month", "tokens_per_minute", "requests_per_minute")


@dataclass(frozen=True, slots=True)
class Scoped:
    """A budget as it applies to one request: ``scope`` names whose counter it is."""

    budget: Budget
    scope: str


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    cap: int | None  # None: counted, not capped (a downgraded request past an exhausted budget)
    amount: int
    expire_at: int
    budget: str
    limit: str  # one of LIMITS
    resets_at: float  # unix time the window ends
    fail_closed: bool = False
    scope: str = "all"  # whose counter: t=<tenant>, r=<route>, both, or all
    window: str = ""  # the window's label (UTC day, month or minute)

    @property
    def unanswered(self) -> int:
        """Where this counter ends for a request that got no answer: it still counts as a request; its
        money and tokens are released."""
        return self.amount if self.limit == "requests_per_minute" else 0


@dataclass(frozen=True, slots=True)
class Ask:
    """What one request may use at most: nano-dollars and tokens (and one request)."""

    usd_nano: int
    tokens: int


def applicable(budgets: Sequence[Budget], tenant: str, route: str) -> list[Scoped]:
    out = []
    for b in budgets:
        if b.tenant not in (None, "*", tenant) or b.route not in (None, "*", route):
            continue
        parts = []
        if b.tenant is not None:
            parts.append(f"t={tenant}")
        if b.route is not None:
            parts.append(f"r={route}")
        out.append(Scoped(b, ",".join(parts) or "all"))
    return out


def counters(
    scoped: Sequence[Scoped], ask: Ask, now: float, prefix: str, uncapped: frozenset[str] = frozenset()
) -> list[Counter]:
    """The counters of every applicable limit; budgets named in ``uncapped`` only count."""
    out = []
    for s in scoped:
        b = s.budget
        for limit in LIMITS:
            cap_value = getattr(b, limit)
            if cap_value is None:
                continue
            if limit == "usd_per_day":
                w, cap, amount = windows.day(now), int(cap_value * 1e9), ask.usd_nano
            elif limit == "usd_per_month":
                w, cap, amount = windows.month(now), int(cap_value * 1e9), ask.usd_nano
            elif limit == "tokens_per_minute":
                w, cap, amount = windows.minute(now), int(cap_value), ask.tokens
            else:
                w, cap, amount = windows.minute(now), int(cap_value), 1
            out.append(
                Counter(
                    key=f"{prefix}b:{b.name}:{s.scope}:{limit}:{w.label}",
                    cap=None if b.name in uncapped else cap,
                    amount=amount,
                    expire_at=w.expire_at,
                    budget=b.name,
                    limit=limit,
                    resets_at=w.ends,
                    fail_closed=b.on_state_unavailable == "closed",
                    scope=s.scope,
                    window=w.label,
                )
            )
    return out


def finals(reserved: Sequence[Counter], actual: Ask, answered: bool) -> list[Final]:
    """What each reserved counter ends at: the actual use when answered; a request that got no answer
    still counts as a request, its money and tokens are released."""
    out = []
    for c in reserved:
        if c.limit in ("usd_per_day", "usd_per_month"):
            used = actual.usd_nano
        elif c.limit == "tokens_per_minute":
            used = actual.tokens
        else:
            used = c.amount
        out.append(Final(used if answered else c.unanswered, c.unanswered))
    return out


def describe(c: Counter, used: int) -> str:
    if c.limit.startswith("usd"):
        period = "day (UTC)" if c.limit == "usd_per_day" else "month (UTC)"
        spent = f"${used / 1e9:.4f} of ${(c.cap or 0) / 1e9:.2f} per {period}"
    elif c.limit == "tokens_per_minute":
        spent = f"{used} of {c.cap} tokens per minute"
    else:
        spent = f"{used} of {c.cap} requests per minute"
    return f"Budget {c.budget!r} is exhausted: {spent} used or reserved by requests in flight."
