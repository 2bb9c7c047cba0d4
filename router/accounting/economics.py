"""What self-hosted tokens really cost (pure): a pool is paid for by the hour whether it is busy or not.

The price headers carry each request's *marginal* cost: its tokens at the pool's throughput at good
utilisation (router.accounting.costs). Over a window the pool costs its *fixed* cost, every replica's
GPU-hours while it was up (as the proxies' health checks saw it, per tier, so a reclaimed spot replica or
one scaled away stops costing; without such a record, every configured replica for the whole window),
and the difference is *idle*. From the tokens the ledger counted in the window:

    busy replica-seconds  = input tokens / input tokens per second + output tokens / output tokens per second
    utilisation           = busy replica-seconds / replica-seconds up
    effective $ per input token  = fixed / busy / input tokens per second   (= marginal price / utilisation)

so a pool idle 90 % of the window costs ten times its marginal price per token. A route's effective cost
is its frontier spend plus each pool's fixed cost shared by busy time. The pools' own counters (vLLM's
``vllm:prompt_tokens_total`` and ``vllm:generation_tokens_total``, scraped by every proxy replica and kept
per hour and replica) cross-check the ledger: more there means traffic that did not come through the
router (it shares the pool and its cost), less means scrapes were missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router.accounting.costs import usd
from router.accounting.ledger import UP_MS
from router.policy.compile import Policy
from router.policy.schema import VllmCluster
from router.policy.schema_base import DEFAULT_TIER
from router.state.base import SEP

Tables = Mapping[str, Mapping[str, int]]  # ledger label -> field -> value


@dataclass(frozen=True, slots=True)
class PoolCost:
    """What a pool costs to keep whatever it serves, and how fast one replica works at good utilisation."""

    replicas: int
    usd_per_hour: float  # every replica's GPU-hours
    input_tps: float  # per replica
    output_tps: float
    tier_usd_per_hour: Mapping[str, float] = field(default_factory=dict)  # one replica of each tier

    def up_usd(self, up_s: Mapping[str, float]) -> float:
        """What replicas up that many seconds per tier cost (a tier no longer in the policy: the dearest)."""
        dearest = max(self.tier_usd_per_hour.values(), default=0.0)
        return sum(s * self.tier_usd_per_hour.get(t, dearest) / 3600 for t, s in up_s.items())

    def busy_s(self, input_tokens: float, output_tokens: float) -> float:
        """Replica-seconds of work in that many tokens."""
        return input_tokens / self.input_tps + output_tokens / self.output_tps

    def usd_per_hour_of(self, replicas: int) -> float:
        return self.usd_per_hour / self.replicas * replicas if self.replicas else 0.0


def pool_cost(cfg: VllmCluster) -> PoolCost:
    c = cfg.cost
    tiers: dict[str, float] = {}
    hourly = 0.0
    for spec in cfg.endpoint_specs():
        price = (spec.usd_per_gpu_hour or c.usd_per_gpu_hour) * c.gpus_per_replica
        tiers[spec.tier or DEFAULT_TIER] = price
        hourly += price
    specs = cfg.endpoint_specs()
    return PoolCost(len(specs), hourly, c.input_tokens_per_second, c.output_tokens_per_second, tiers)


def pool_costs(policy: Policy) -> dict[str, PoolCost]:
    return {name: pool_cost(cfg) for name, cfg in policy.clusters.items() if isinstance(cfg, VllmCluster)}


@dataclass(slots=True)
class Tally:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nano: int = 0
    baseline_nano: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def tally(tables: Iterable[Mapping[str, int]]) -> dict[tuple[str, str], Tally]:
    """The ledger added up by (route, cluster)."""
    out: dict[tuple[str, str], Tally] = {}
    for fields in tables:
        for f, v in fields.items():
            parts = f.split(SEP)
            if len(parts) != 4 or not hasattr(Tally, parts[3]):
                continue
            t = out.setdefault((parts[1], parts[2]), Tally())
            setattr(t, parts[3], getattr(t, parts[3]) + v)
    return out


def served(tables: Iterable[Mapping[str, int]]) -> dict[str, tuple[int, int]]:
    """What each pool's own counters say it processed (input, output): per hour table the largest count of
    any proxy replica (all of them scrape the same replicas), added up over the hours."""
    out: dict[str, tuple[int, int]] = {}
    for fields in tables:
        best: dict[tuple[str, str], int] = {}
        for f, v in fields.items():
            parts = f.split(SEP)
            if len(parts) == 3:
                best[(parts[0], parts[2])] = max(best.get((parts[0], parts[2]), 0), v)
        for (cluster, metric), v in best.items():
            i, o = out.get(cluster, (0, 0))
            out[cluster] = (i + v, o) if metric == "prompt_tokens" else (i, o + v)
    return out


def uptime(tables: Iterable[Mapping[str, int]]) -> dict[str, dict[str, float]]:
    """Seconds each pool's replicas were up, by tier: per hour table the largest count of any proxy
    replica (each one's health checks see every pool replica), added up over the hours."""
    out: dict[str, dict[str, float]] = {}
    for fields in tables:
        best: dict[tuple[str, str], int] = {}
        for f, v in fields.items():
            parts = f.split(SEP)
            if len(parts) == 4 and parts[2] == UP_MS:
                best[(parts[0], parts[3])] = max(best.get((parts[0], parts[3]), 0), v)
        for (cluster, tier), ms in best.items():
            tiers = out.setdefault(cluster, {})
            tiers[tier] = tiers.get(tier, 0.0) + ms / 1000
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _r(x: float | None, digits: int = 9) -> float | None:
    return None if x is None else round(x, digits)


def _ratio_json(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.9g}")


@dataclass(frozen=True)
class PoolEconomics:
    cluster: str
    cost: PoolCost
    window_s: float
    used: Tally
    vllm: tuple[int, int] | None  # the pool's own counters (input, output); None: not scraped
    up_s: Mapping[str, float] | None = None  # replica up time by tier; None: not seen (every replica, always)

    @property
    def busy_s(self) -> float:
        return self.cost.busy_s(self.used.input_tokens, self.used.output_tokens)

    @property
    def replica_s(self) -> float:
        """Replica-seconds paid for: as the health checks saw them up, else every configured replica."""
        return sum(self.up_s.values()) if self.up_s else self.cost.replicas * self.window_s

    @property
    def fixed_usd(self) -> float:
        return self.cost.up_usd(self.up_s) if self.up_s else self.cost.usd_per_hour * self.window_s / 3600

    @property
    def utilisation(self) -> float | None:
        return _ratio(self.busy_s, self.replica_s)

    @property
    def idle_usd(self) -> float:
        return max(0.0, self.fixed_usd - usd(self.used.cost_nano))

    def effective_per_mtok(self) -> tuple[float | None, float | None]:
        """Dollars per million input and output tokens with the idle time paid for; None: nothing served."""
        per_busy_s = _ratio(self.fixed_usd, self.busy_s)
        if per_busy_s is None:
            return None, None
        return per_busy_s / self.cost.input_tps * 1e6, per_busy_s / self.cost.output_tps * 1e6

    def as_json(self) -> dict[str, Any]:
        u, util = self.used, self.utilisation
        eff_in, eff_out = self.effective_per_mtok()
        vllm_util = None if self.vllm is None else _ratio(self.cost.busy_s(*self.vllm), self.replica_s)
        return {
            "cluster": self.cluster,
            "replicas": self.cost.replicas,
            "replicas_up": _r(_ratio(self.replica_s, self.window_s), 3),
            "replica_hours": round(self.replica_s / 3600, 9),
            "replica_hours_seen": self.up_s is not None,
            "usd_per_hour": round(self.cost.usd_per_hour, 6),
            "requests": u.requests,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "vllm_input_tokens": None if self.vllm is None else self.vllm[0],
            "vllm_output_tokens": None if self.vllm is None else self.vllm[1],
            "utilisation": _ratio_json(util),
            "vllm_utilisation": _ratio_json(vllm_util),
            "idle_replicas": _r(
                None if util is None or not self.window_s else self.replica_s / self.window_s * max(0.0, 1 - util), 3
            ),
            "fixed_usd": round(self.fixed_usd, 9),
            "marginal_usd": round(usd(u.cost_nano), 9),
            "idle_usd": round(self.idle_usd, 9),
            "effective_usd_per_mtok_input": _r(eff_in, 6),
            "effective_usd_per_mtok_output": _r(eff_out, 6),
            "effective_usd_per_1k_tokens": _r(_ratio(self.fixed_usd * 1000, u.tokens)),
            "baseline_usd_per_1k_tokens": _r(_ratio(usd(u.baseline_nano) * 1000, u.tokens)),
            "net_savings_usd": round(usd(u.baseline_nano) - self.fixed_usd, 9),
            "note": (
                f"busier than its replicas can be ({util:.0%}): the policy's tokens per second are too low, or "
                "replicas up are not all in the policy"
                if util is not None and util > 1
                else None
            ),
        }


@dataclass(frozen=True)
class Economics:
    """The pools and routes over one window."""

    window_s: float
    pools: dict[str, PoolEconomics]
    by_route: dict[tuple[str, str], Tally] = field(default_factory=dict)

    def idle_share(self, cluster: str, t: Tally) -> float:
        """The part of ``cluster``'s idle cost that traffic ``t`` on it carries (shared by busy time)."""
        pool = self.pools.get(cluster)
        if pool is None or not pool.busy_s:
            return 0.0
        return pool.idle_usd * pool.cost.busy_s(t.input_tokens, t.output_tokens) / pool.busy_s

    def unallocated_idle(self) -> float:
        """Idle cost of pools that served nothing in the window: nobody's traffic carries it."""
        return sum(p.idle_usd for p in self.pools.values() if not p.busy_s)

    def routes(self) -> list[dict[str, Any]]:
        rows: dict[str, list[float]] = {}  # route -> tokens, marginal, idle, baseline
        for (route, cluster), t in self.by_route.items():
            r = rows.setdefault(route, [0.0, 0.0, 0.0, 0.0])
            r[0] += t.tokens
            r[1] += usd(t.cost_nano)
            r[2] += self.idle_share(cluster, t)
            r[3] += usd(t.baseline_nano)
        out = []
        for route, (tokens, marginal, idle, baseline) in sorted(rows.items()):
            out.append(
                {
                    "route": route,
                    "tokens": int(tokens),
                    "marginal_usd": round(marginal, 9),
                    "idle_usd": round(idle, 9),
                    "cost_usd": round(marginal + idle, 9),
                    "baseline_usd": round(baseline, 9),
                    "effective_usd_per_1k_tokens": _r(_ratio((marginal + idle) * 1000, tokens)),
                    "baseline_usd_per_1k_tokens": _r(_ratio(baseline * 1000, tokens)),
                    "net_savings_usd": round(baseline - marginal - idle, 9),
                }
            )
        return out

    def as_json(self) -> dict[str, Any]:
        marginal = sum(usd(t.cost_nano) for t in self.by_route.values())
        baseline = sum(usd(t.baseline_nano) for t in self.by_route.values())
        idle = sum(p.idle_usd for p in self.pools.values())
        return {
            "window_s": round(self.window_s, 3),
            "pools": [p.as_json() for _, p in sorted(self.pools.items())],
            "routes": self.routes(),
            "total": {
                "marginal_usd": round(marginal, 9),
                "idle_usd": round(idle, 9),
                "cost_usd": round(marginal + idle, 9),
                "baseline_usd": round(baseline, 9),
                "net_savings_usd": round(baseline - marginal - idle, 9),
                "net_savings_percent": round(100 * (baseline - marginal - idle) / baseline, 2) if baseline else None,
            },
        }


def economics(policy: Policy, ledgers: Tables, served_tables: Tables, window_s: float) -> Economics:
    """The window's economics from its ledger tables (day or hour), what the pools' counters say they
    served in it, and its length (seconds of it that have passed)."""
    by_route = tally(ledgers.values())
    counted = served(served_tables.values())
    up = uptime(served_tables.values())
    pools = {}
    for name, cost in pool_costs(policy).items():
        used = Tally()
        for (_, cluster), t in by_route.items():
            if cluster == name:
                for m in ("requests", "input_tokens", "output_tokens", "cost_nano", "baseline_nano"):
                    setattr(used, m, getattr(used, m) + getattr(t, m))
        pools[name] = PoolEconomics(name, cost, window_s, used, counted.get(name), up.get(name))
    return Economics(window_s, pools, by_route)
