"""``router policy diff OLD NEW --traffic FILE``: what a policy change would do, before it ships.

Both policies route the same traffic (:mod:`router.offline.traffic`) offline, through the same classifier
and engine as the proxy, and no upstream is called. The report gives, for each policy, the route mix, the
share of requests whose first target is a frontier API, and the expected cost per 1,000 requests at the
prices the policy knows (litellm's map or the policy's own ``price``; a self-hosted pool at its
``cost``), then every request whose decision changed. Each request's cost is its estimated prompt tokens
plus its recorded output tokens (a decision record's ``usage``), else ``output_tokens`` (the same
assumption on both sides, so the comparison holds even where the absolute figure is a guess).

Thresholds make it a CI gate: the new frontier share, the rise in cost per 1K requests, the share of
decisions changed; :func:`breaches` says which were passed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from router.accounting.prices import price_book
from router.classifier.predict import ClassifierModel
from router.errors import RouterError
from router.offline.router import OfflineRouter
from router.offline.traffic import Replay, Traffic
from router.policy.compiled import Policy
from router.policy.engine import decide
from router.policy.schema import FrontierCluster
from router.types import Usage

DEFAULT_OUTPUT_TOKENS = 256


@dataclass(frozen=True)
class Routed:
    """One request as one policy routes it (``error``: the policy cannot route it, e.g. an unknown model)."""

    route: str
    cluster: str
    frontier: bool
    cost_usd: float
    reason: str
    error: str | None = None


@dataclass
class Side:
    label: str
    routed: list[Routed]

    @property
    def route_mix(self) -> Counter[str]:
        return Counter(r.route for r in self.routed)

    @property
    def frontier_share(self) -> float:
        return sum(r.frontier for r in self.routed) / len(self.routed) if self.routed else 0.0

    @property
    def cost_per_1k(self) -> float:
        return 1000 * sum(r.cost_usd for r in self.routed) / len(self.routed) if self.routed else 0.0

    @property
    def errors(self) -> int:
        return sum(1 for r in self.routed if r.error is not None)


@dataclass
class Report:
    traffic: Traffic
    old: Side
    new: Side
    changed: list[tuple[Replay, Routed, Routed]] = field(default_factory=list)

    @property
    def changed_share(self) -> float:
        return len(self.changed) / len(self.old.routed) if self.old.routed else 0.0

    @property
    def cost_change(self) -> float | None:
        """The relative change in cost per 1K requests (None: the old policy's cost was zero)."""
        old = self.old.cost_per_1k
        return (self.new.cost_per_1k - old) / old if old > 0 else None


def replay(
    label: str,
    policy: Policy,
    model: ClassifierModel | None,
    traffic: Traffic,
    vectors: dict[str, np.ndarray],
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Side:
    """Route every request of ``traffic`` with ``policy`` (classifying those with text)."""
    prices = price_book(policy)
    router = OfflineRouter(policy, model, vectors=vectors)
    texts = [r for r in traffic.requests if r.chat is not None]
    chats = [r.chat for r in texts if r.chat is not None]
    classified = router.classify(chats, [r.headers for r in texts], [r.tenant for r in texts])
    features = {id(r): c.features for r, c in zip(texts, classified, strict=True)}
    out = []
    for r in traffic.requests:
        feats = features.get(id(r), r.recorded)
        assert feats is not None  # a request has its text or its recorded features (traffic.read_traffic)
        try:
            d = decide(policy, feats)
        except RouterError as exc:
            out.append(Routed("(error)", "-", False, 0.0, exc.message, exc.message))
            continue
        usage = Usage(feats.prompt_tokens, r.output_tokens if r.output_tokens is not None else output_tokens)
        found = prices.of(d.primary.cluster)
        cost = found.cost(usage) if found is not None else 0.0
        frontier = isinstance(policy.clusters.get(d.primary.cluster), FrontierCluster)
        out.append(Routed(d.route, d.primary.cluster, frontier, cost, d.reason))
    return Side(label, out)


def compare(traffic: Traffic, old: Side, new: Side) -> Report:
    report = Report(traffic, old, new)
    for r, a, b in zip(traffic.requests, old.routed, new.routed, strict=True):
        if (a.route, a.cluster, a.error) != (b.route, b.cluster, b.error):
            report.changed.append((r, a, b))
    return report


@dataclass(frozen=True)
class Thresholds:
    max_frontier_share: float | None = None  # the new policy's, 0-1
    max_cost_increase: float | None = None  # relative, 0.1 = +10 %
    max_changed: float | None = None  # share of requests whose decision changed, 0-1


def breaches(report: Report, t: Thresholds) -> list[str]:
    out = []
    if t.max_frontier_share is not None and report.new.frontier_share > t.max_frontier_share:
        out.append(
            f"frontier share {report.new.frontier_share:.1%} is above --max-frontier-share {t.max_frontier_share:.1%}"
        )
    change = report.cost_change
    if t.max_cost_increase is not None and change is not None and change > t.max_cost_increase:
        out.append(f"cost per 1K requests rises {change:+.1%}, above --max-cost-increase {t.max_cost_increase:.1%}")
    if t.max_changed is not None and report.changed_share > t.max_changed:
        out.append(f"{report.changed_share:.1%} of decisions changed, above --max-changed {t.max_changed:.1%}")
    if report.new.errors > report.old.errors:
        out.append(f"the new policy cannot route {report.new.errors - report.old.errors} more request(s)")
    return out


def as_json(report: Report) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {
            "policy": s.label,
            "route_mix": dict(sorted(s.route_mix.items())),
            "frontier_share": round(s.frontier_share, 4),
            "cost_per_1k_requests_usd": round(s.cost_per_1k, 6),
            "errors": s.errors,
        }

    return {
        "requests": len(report.traffic.requests),
        "with_text": report.traffic.with_text,
        "unreadable": report.traffic.problems,
        "old": side(report.old),
        "new": side(report.new),
        "changed": [
            {"id": r.id, "line": r.line, "old": [a.route, a.cluster], "new": [b.route, b.cluster], "why": b.reason}
            for r, a, b in report.changed
        ],
    }


def render(report: Report, show: int = 20) -> str:
    """The report for a person: totals side by side, the route mix, then the changed decisions."""
    t, old, new = report.traffic, report.old, report.new
    n = len(t.requests)
    lines = [
        f"traffic: {n} requests ({t.with_text} classified from their text, {n - t.with_text} routed on their "
        f"recorded classification){f'; {len(t.problems)} unreadable lines' if t.problems else ''}",
        *(f"  {p}" for p in t.problems[:5]),
        "",
        f"{'':<28}{'old':>14}{'new':>14}",
        f"{'policy':<28}{old.label[-14:]:>14}{new.label[-14:]:>14}",
        f"{'frontier share':<28}{old.frontier_share:>14.1%}{new.frontier_share:>14.1%}",
        f"{'cost per 1K requests (USD)':<28}{old.cost_per_1k:>14.4f}{new.cost_per_1k:>14.4f}"
        + (f"   {report.cost_change:+.1%}" if report.cost_change is not None else ""),
        f"{'cannot route':<28}{old.errors:>14}{new.errors:>14}",
        "",
        f"{'route':<28}{'old':>14}{'new':>14}",
    ]
    a, b = old.route_mix, new.route_mix
    for route in sorted(set(a) | set(b), key=lambda r: (-max(a[r], b[r]), r)):
        lines.append(f"{route[:27]:<28}{_count(a[route], n):>14}{_count(b[route], n):>14}")
    lines += ["", f"changed decisions: {len(report.changed)} of {n} ({report.changed_share:.1%})"]
    moves = Counter((x.route, y.route) for _, x, y in report.changed)
    for (x, y), count in moves.most_common():
        lines.append(f"  {count:>5}  {x} -> {y}")
    if report.changed and show > 0:
        lines += ["", f"first {min(show, len(report.changed))} changed (id, old -> new: why):"]
        for r, was, now in report.changed[:show]:
            lines.append(
                f"  {r.id} (line {r.line}): {was.route} ({was.cluster}) -> {now.route} ({now.cluster}): {now.reason}"
            )
    return "\n".join(lines)


def _count(k: int, n: int) -> str:
    return f"{k} {k / n:6.1%}" if n else "0"
