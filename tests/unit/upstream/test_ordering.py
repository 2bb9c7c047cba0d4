from __future__ import annotations

from router.types import LatencyTargets, Target
from router.upstream.ordering import Prediction, miss, order

A, B, C = Target("a"), Target("b"), Target("c")


def test_no_budget_or_no_evidence_keeps_the_order() -> None:
    assert order([A, B], None, [Prediction(9, 9), Prediction(9, 9)]) == ([A, B], [])
    assert order([A, B], LatencyTargets(0.1), [Prediction(None, None), Prediction(None, None)]) == ([A, B], [])


def test_targets_predicted_over_budget_go_last_fastest_first() -> None:
    budget = LatencyTargets(ttft_s=0.5)
    ordered, deferred = order([A, B, C], budget, [Prediction(2.0, None), Prediction(0.9, None), Prediction(0.2, None)])
    assert ordered == [C, B, A]
    assert [t for t, _ in deferred] == [B, A]
    assert deferred[0][1] == "p95 time to first byte 900 ms > budget 500 ms"


def test_queueing_counts_and_latency_budgets_too() -> None:
    assert miss(LatencyTargets(ttft_s=0.5), Prediction(0.4, None, queue_s=0.2)) is not None
    assert miss(LatencyTargets(ttft_s=0.5), Prediction(0.4, None)) is None
    why = miss(LatencyTargets(latency_s=1.0), Prediction(0.1, 1.5))
    assert why is not None
    assert why[0] == "p95 latency 1500 ms > budget 1000 ms"
