"""Capacity planning (pure): from the hourly ledger and the pools' own counters, how many replicas each pool
needs, and below what volume a route would be cheaper on its frontier fallback. ``router capacity`` and
``GET /v1/admin/capacity``.

Per pool, over the last days:

- tokens per hour (mean and peak hour), the larger of the ledger's count and the pool's counters';
- replicas needed = the peak hour's busy replica-seconds / 3600 / target utilisation, rounded up (at
  least 1);
- break-even volume = what one replica costs a day / the frontier fallback's price per token (at the
  pool's input/output mix): below it the pool's routes are cheaper on the frontier API, whatever the
  utilisation;
- a recommendation line: move the routes to the frontier, scale in, scale out, or leave it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.accounting.costs import Prices
from router.accounting.economics import PoolCost, Tables, pool_costs
from router.accounting.prices import PriceBook
from router.accounting.usage import table
from router.errors import InvalidRequest
from router.policy.compile import Policy
from router.policy.schema import FrontierCluster
from router.state.base import SEP

DEFAULT_TARGET = 0.7
MAX_DAYS = 31


def parameters(days: str | None, target: str | None) -> tuple[int, float]:
    """The report's days and target utilisation from query parameters; bad ones are a 400 naming them."""
    try:
        n = int(days) if days else 1
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_DAYS:
        raise InvalidRequest(f"`days` must be a whole number from 1 to {MAX_DAYS}.", param="days")
    try:
        t = float(target) if target else DEFAULT_TARGET
    except ValueError:
        t = 0.0
    if not 0 < t <= 1:
        raise InvalidRequest("`target_utilisation` must be a number above 0 and at most 1.", param="target_utilisation")
    return n, t


MIX_WITHOUT_TRAFFIC = (3.0, 1.0)  # input to output tokens assumed for a pool that served nothing


@dataclass(frozen=True, slots=True)
class Hour:
    input_tokens: int = 0
    output_tokens: int = 0


def per_hour(ledgers: Tables, served_tables: Tables) -> dict[str, dict[str, Hour]]:
    """Tokens per (pool, hour): the ledger's, or the pool's own counters' where they count more (traffic
    that did not pass the router still occupies the replicas). ``served_tables``: hour -> its served table."""
    out: dict[str, dict[str, Hour]] = {}
    for hour in sorted({*ledgers, *served_tables}):
        sums: dict[str, list[int]] = {}
        for f, v in ledgers.get(hour, {}).items():
            parts = f.split(SEP)
            if len(parts) == 4 and parts[3] in ("input_tokens", "output_tokens"):
                s = sums.setdefault(parts[2], [0, 0])
                s[parts[3] == "output_tokens"] += v
        best: dict[tuple[str, int], int] = {}
        for f, v in served_tables.get(hour, {}).items():
            parts = f.split(SEP)
            if len(parts) == 3:
                key = (parts[0], int(parts[2] == "generation_tokens"))
                best[key] = max(best.get(key, 0), v)
        for (cluster, i), v in best.items():
            s = sums.setdefault(cluster, [0, 0])
            s[i] = max(s[i], v)
        for cluster, (i, o) in sums.items():
            out.setdefault(cluster, {})[hour] = Hour(i, o)
    return out


RouteHours = Mapping[str, list[int]]  # hour -> [input, output] tokens of one route on one pool


def route_tokens(ledgers: Tables) -> dict[tuple[str, str], dict[str, list[int]]]:
    """(route, cluster) -> hour -> [input, output] tokens."""
    out: dict[tuple[str, str], dict[str, list[int]]] = {}
    for hour, fields in ledgers.items():
        for f, v in fields.items():
            parts = f.split(SEP)
            if len(parts) == 4 and parts[3] in ("input_tokens", "output_tokens"):
                out.setdefault((parts[1], parts[2]), {}).setdefault(hour, [0, 0])[parts[3] == "output_tokens"] += v
    return out


def _route(
    route: str, by_hour: RouteHours, hours: Sequence[str], cost: PoolCost, policy: Policy, book: PriceBook
) -> dict[str, Any]:
    """One route's traffic on a pool, and the volume below which it alone would not pay for a replica."""
    total_in = sum(t[0] for t in by_hour.values())
    total_out = sum(t[1] for t in by_hour.values())
    days = len(hours) / 24
    fallback = frontier_fallback(policy, route)
    prices = book.clusters.get(fallback, book.baseline) if fallback is not None else book.baseline
    per_token = _per_token(prices, (total_in, total_out) if total_in + total_out else MIX_WITHOUT_TRAFFIC)
    return {
        "route": route,
        "tokens_per_hour_mean": round((total_in + total_out) / len(hours), 1) if hours else 0.0,
        "tokens_per_hour_peak": max((sum(t) for t in by_hour.values()), default=0),
        "tokens_per_day": round((total_in + total_out) / days, 1) if days else 0.0,
        "frontier_fallback": fallback,
        "break_even_tokens_per_day": round(cost.usd_per_hour_of(1) * 24 / per_token, 1) if per_token else None,
    }


def frontier_fallback(policy: Policy, route: str) -> str | None:
    """The first frontier cluster in a route's chain (where its traffic would go without the pool)."""
    decision = policy.route_decision(route)
    if decision is None:
        return None
    for t in decision.targets:
        if isinstance(policy.clusters.get(t.cluster), FrontierCluster):
            return t.cluster
    return None


def _per_token(prices: Prices, mix: tuple[float, float]) -> float:
    i, o = mix
    return (prices.input * i + prices.output * o) / (i + o)


def _pool(
    name: str,
    cost: PoolCost,
    hours: Sequence[str],
    tokens: Mapping[str, Hour],
    routes: Mapping[str, RouteHours],
    policy: Policy,
    book: PriceBook,
    target: float,
) -> dict[str, Any]:
    days = len(hours) / 24
    series = [tokens.get(h, Hour()) for h in hours]
    total_in, total_out = sum(h.input_tokens for h in series), sum(h.output_tokens for h in series)
    peak = max(series, key=lambda h: cost.busy_s(h.input_tokens, h.output_tokens), default=Hour())
    peak_busy = cost.busy_s(peak.input_tokens, peak.output_tokens) / 3600  # replicas busy in the peak hour
    needed = max(1, math.ceil(peak_busy / target - 1e-9))
    mix = (total_in, total_out) if total_in + total_out else MIX_WITHOUT_TRAFFIC
    fallbacks = sorted({f for r in routes if (f := frontier_fallback(policy, r)) is not None})
    fb_prices = [book.clusters[f] for f in fallbacks if f in book.clusters] or [book.baseline]
    frontier_per_token = min(_per_token(p, mix) for p in fb_prices)
    one_replica_day = cost.usd_per_hour_of(1) * 24
    break_even = one_replica_day / frontier_per_token if frontier_per_token else math.inf
    per_day = (total_in + total_out) / days if days else 0.0
    frontier_day = per_day * frontier_per_token
    now_day = cost.usd_per_hour * 24
    needed_day = cost.usd_per_hour_of(needed) * 24
    where = "/".join(fallbacks) or "the baseline model"
    names = ", ".join(sorted(routes)) or "none"
    if per_day == 0:
        advice = (
            f"{name} served nothing in {days:g} day(s) and costs ${now_day:.2f}/day: remove it or route traffic to it"
        )
    elif per_day < break_even:
        advice = (
            f"{name}: {per_day:,.0f} tokens/day is below the break-even {break_even:,.0f} against {where}: send its "
            f"routes ({names}) there and scale the pool to 0 (saves ${now_day - frontier_day:.2f}/day)"
        )
    elif needed < cost.replicas:
        advice = (
            f"{name}: the peak hour needs {needed} replica(s) at {target:.0%} utilisation; it has {cost.replicas}: "
            f"scale to {needed} (saves ${now_day - needed_day:.2f}/day)"
        )
    elif needed > cost.replicas:
        advice = (
            f"{name}: the peak hour needs {needed} replica(s) at {target:.0%} utilisation; it has {cost.replicas}: "
            f"add {needed - cost.replicas} (or its spill-over to {where} grows)"
        )
    else:
        advice = f"{name}: {cost.replicas} replica(s) fit the peak hour at {target:.0%} utilisation: leave it"
    return {
        "cluster": name,
        "replicas": cost.replicas,
        "replicas_needed": needed,
        "target_utilisation": target,
        "tokens_per_hour_mean": round((total_in + total_out) / len(hours), 1) if hours else 0.0,
        "tokens_per_hour_peak": peak.input_tokens + peak.output_tokens,
        "peak_busy_replicas": round(peak_busy, 4),
        "tokens_per_day": round(per_day, 1),
        "break_even_tokens_per_day": None if math.isinf(break_even) else round(break_even, 1),
        "frontier_fallbacks": fallbacks,
        "usd_per_day": round(now_day, 6),
        "usd_per_day_at_needed": round(needed_day, 6),
        "frontier_usd_per_day": round(frontier_day, 6),
        "routes": [_route(r, t, hours, cost, policy, book) for r, t in sorted(routes.items())],
        "recommendation": advice,
    }


def plan(
    policy: Policy,
    book: PriceBook,
    hours: Sequence[str],
    ledgers: Tables,
    served_tables: Tables,
    target: float = DEFAULT_TARGET,
) -> dict[str, Any]:
    """The capacity report over ``hours`` (hour labels, oldest first; ``ledgers`` keyed by them)."""
    tokens = per_hour(ledgers, served_tables)
    by_route = route_tokens(ledgers)
    pools = []
    for name, cost in sorted(pool_costs(policy).items()):
        routes = {r: t for (r, c), t in by_route.items() if c == name}
        pools.append(_pool(name, cost, hours, tokens.get(name, {}), routes, policy, book, target))
    return {"object": "router.capacity", "hours": [hours[0], hours[-1]] if hours else [], "pools": pools}


def render(doc: Mapping[str, Any]) -> str:
    rows = [
        [
            p["cluster"],
            f"{p['replicas']} -> {p['replicas_needed']}",
            f"{p['tokens_per_hour_mean']:,.0f}",
            f"{p['tokens_per_hour_peak']:,}",
            f"{p['tokens_per_day']:,.0f}",
            "-" if p["break_even_tokens_per_day"] is None else f"{p['break_even_tokens_per_day']:,.0f}",
            f"{p['usd_per_day']:.2f}",
            f"{p['frontier_usd_per_day']:.2f}",
        ]
        for p in doc["pools"]
    ]
    head = ["pool", "replicas", "tok/h mean", "tok/h peak", "tok/day", "break-even tok/day", "$/day", "frontier $/day"]
    span = f"hours {doc['hours'][0]}..{doc['hours'][1]} (UTC)" if doc["hours"] else "no hours"
    lines = [span, table(head, rows), ""]
    for p in doc["pools"]:
        for r in p["routes"]:
            be = r["break_even_tokens_per_day"]
            lines.append(
                f"  {p['cluster']} <- {r['route']}: {r['tokens_per_hour_mean']:,.0f} tok/h mean, "
                f"{r['tokens_per_hour_peak']:,} peak, {r['tokens_per_day']:,.0f} tok/day; alone it pays for a "
                f"replica above {'-' if be is None else f'{be:,.0f}'} tok/day against "
                f"{r['frontier_fallback'] or 'the baseline model'}"
            )
    lines += ["", *(f"* {p['recommendation']}" for p in doc["pools"])]
    return "\n".join(lines)
