"""A complexity rule's threshold against the share of *all* traffic that reaches a frontier API.

A rule's ``min_complexity`` governs only the requests that reach it: rules evaluated before it (tools,
coding, a tenant override) have already sent theirs, and requests it lets pass may go to a frontier model
by a later rule or a default route. So the score's quantiles alone ("0.30 sends 30 %") say little about
the bill. Here every request is routed by the whole policy twice, once with the rule at threshold 0 and
once without it, which is enough to know, for any threshold ``t``, where each request goes: to the rule's
target when the rule would win and its complexity is at least ``t``, else where the policy without the
rule sends it. ``router eval --policies`` prints the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from router.policy.compiled import CompiledRoute, Policy
from router.policy.engine import decide
from router.policy.schema import FrontierCluster
from router.types import Decision, RequestFeatures

SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TARGETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9)


def complexity_rule(policy: Policy, name: str | None = None) -> CompiledRoute:
    """The rule ``name``, or the policy's only rule with a ``min_complexity``; ValueError otherwise."""
    if name is not None:
        found = [r for r in policy.routes if r.route.name == name]
        if not found:
            raise ValueError(f"no rule named {name!r} (rules: {', '.join(r.route.name for r in policy.routes)})")
        return found[0]
    candidates = [r for r in policy.routes if r.route.match.min_complexity is not None]
    if len(candidates) != 1:
        names = ", ".join(r.route.name for r in candidates) or "none"
        raise ValueError(f"name the rule with --rule: rules with min_complexity: {names}")
    return candidates[0]


@dataclass(frozen=True)
class Curve:
    """Per request: its complexity, whether the rule would take it (at threshold 0), and whether it
    reaches the frontier with the rule taking it and without."""

    rule: str
    complexity: tuple[float, ...]
    taken: tuple[bool, ...]
    frontier_if_taken: tuple[bool, ...]
    frontier_otherwise: tuple[bool, ...]

    def share(self, threshold: float) -> float:
        n = len(self.complexity)
        hits = sum(
            (fr if take and c >= threshold else fo)
            for c, take, fr, fo in zip(
                self.complexity, self.taken, self.frontier_if_taken, self.frontier_otherwise, strict=True
            )
        )
        return hits / n if n else 0.0

    @property
    def floor(self) -> float:
        """The share with the rule off (a threshold above every score)."""
        return self.share(2.0)

    @property
    def ceiling(self) -> float:
        return self.share(0.0)

    def threshold_for(self, target: float) -> tuple[float, float] | None:
        """The threshold whose share is nearest ``target`` (ties: the higher threshold), with that share;
        None when the target is outside what the rule can reach."""
        if not self.floor - 0.005 <= target <= self.ceiling + 0.005:
            return None
        candidates = sorted({c for c, take in zip(self.complexity, self.taken, strict=True) if take} | {2.0})
        best = min(candidates, key=lambda t: (abs(self.share(t) - target), -t))
        return best, self.share(best)


def curve(policy: Policy, rule: CompiledRoute, features: Sequence[RequestFeatures]) -> Curve:
    forced_match = rule.route.match.model_copy(update={"min_complexity": 0.0})
    forced = replace(rule, route=rule.route.model_copy(update={"match": forced_match}))
    with_rule = replace(policy, routes=tuple(forced if r is rule else r for r in policy.routes))
    without = replace(policy, routes=tuple(r for r in policy.routes if r is not rule))
    taken, if_taken, otherwise = [], [], []
    for f in features:
        d = decide(with_rule, f)
        taken.append(d.rule == rule.route.name)
        if_taken.append(_frontier(policy, d))
        otherwise.append(_frontier(policy, decide(without, f)))
    complexity = tuple(f.complexity if f.complexity is not None else -1.0 for f in features)
    return Curve(rule.route.name, complexity, tuple(taken), tuple(if_taken), tuple(otherwise))


def _frontier(policy: Policy, d: Decision) -> bool:
    return isinstance(policy.clusters.get(d.primary.cluster), FrontierCluster)


def render(c: Curve, label: str) -> str:
    lines = [
        f"== min_complexity of rule {c.rule!r} against the share of ALL requests whose first target is a frontier "
        f"API ({label}: every rule, on these rows)",
        f"  without the rule: {c.floor:.1%}; with it at 0: {c.ceiling:.1%} (the rule moves at most "
        f"{c.ceiling - c.floor:.1%} of traffic)",
        "  threshold -> frontier share: " + "  ".join(f"{t:.1f}: {c.share(t):.1%}" for t in SWEEP),
    ]
    parts = []
    for target in TARGETS:
        found = c.threshold_for(target)
        if found is None:
            parts.append(f"{target:.0%}: out of reach")
        else:
            parts.append(f"{target:.0%}: {'rule off' if found[0] > 1 else f'{found[0]:.3f}'} ({found[1]:.1%})")
    lines.append("  target share -> threshold: " + "  ".join(parts))
    return "\n".join(lines)
