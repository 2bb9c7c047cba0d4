"""Latency budgets (pure): order a decision's targets so that those predicted to miss go last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from router.types import LatencyTargets, Target


@dataclass(frozen=True, slots=True)
class Prediction:
    """A cluster's live estimates, seconds: p95 time to first byte and of whole attempts (None: too few
    samples to say), and the queueing a request would meet there now."""

    ttft_p95: float | None
    latency_p95: float | None
    queue_s: float = 0.0


def miss(budget: LatencyTargets, p: Prediction) -> tuple[str, float] | None:
    """Why ``p`` is predicted to miss ``budget`` (and by how much it is predicted to take), or None."""
    if budget.ttft_s is not None and p.ttft_p95 is not None:
        predicted = p.ttft_p95 + p.queue_s
        if predicted > budget.ttft_s:
            return f"p95 time to first byte {predicted * 1000:.0f} ms > budget {budget.ttft_s * 1000:.0f} ms", predicted
    if budget.latency_s is not None and p.latency_p95 is not None:
        predicted = p.latency_p95 + p.queue_s
        if predicted > budget.latency_s:
            return f"p95 latency {predicted * 1000:.0f} ms > budget {budget.latency_s * 1000:.0f} ms", predicted
    return None


def order(
    targets: Sequence[Target], budget: LatencyTargets | None, predictions: Sequence[Prediction]
) -> tuple[list[Target], list[tuple[Target, str]]]:
    """Targets predicted within budget first (in the decision's order), then the rest, fastest first;
    and the deferred ones with why. A budget is a preference: a request is never refused for it."""
    if budget is None:
        return list(targets), []
    keep: list[Target] = []
    late: list[tuple[float, int, Target, str]] = []
    for i, (t, p) in enumerate(zip(targets, predictions, strict=True)):
        m = miss(budget, p)
        if m is None:
            keep.append(t)
        else:
            late.append((m[1], i, t, m[0]))
    late.sort(key=lambda x: (x[0], x[1]))
    return keep + [t for _, _, t, _ in late], [(t, why) for _, _, t, why in late]
