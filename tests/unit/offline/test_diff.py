"""Two policies route the same traffic; the report counts what moved and what it costs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from router.classifier.predict import ClassifierModel
from router.offline import diff
from router.offline.traffic import read_traffic
from router.policy.compile import Policy, compile_texts

POLICY = """
version: 1
clusters:
  pool: {{kind: vllm, model: m, endpoints: ["http://10.0.0.1/v1"], cost: {{usd_per_gpu_hour: 2.0}}}}
  big: {{kind: frontier, model: openai/gpt-4o, price: {{input_usd_per_mtok: 10.0, output_usd_per_mtok: 20.0}}}}
models:
  auto: {{default_route: small}}
costs: {{baseline_price: {{input_usd_per_mtok: 10.0, output_usd_per_mtok: 20.0}}}}
routes:
  - {{name: hard, cluster: big, match: {{min_complexity: {threshold}}}}}
  - {{name: small, target_only: true, cluster: pool}}
"""


def policy(threshold: float) -> Policy:
    return compile_texts([("p.yaml", POLICY.format(threshold=threshold))], env={})


def records(tmp_path: Path, complexities: list[float]) -> Path:
    path = tmp_path / "traffic.jsonl"
    rows = [
        {
            "request_id": f"r{i}",
            "model": "auto",
            "features": {"prompt_tokens": 1000},
            "task": "open_qa",
            "confidence": 0.9,
            "complexity": c,
            "usage": {"output_tokens": 500},
        }
        for i, c in enumerate(complexities)
    ]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    return path


def test_a_lower_threshold_moves_requests_to_the_frontier_and_the_report_says_which(tmp_path: Path) -> None:
    traffic = read_traffic(records(tmp_path, [0.1, 0.35, 0.45, 0.6]))
    old = diff.replay("old", policy(0.5), None, traffic, {})
    new = diff.replay("new", policy(0.3), None, traffic, {})
    report = diff.compare(traffic, old, new)
    assert old.route_mix == {"small": 3, "hard": 1}
    assert new.route_mix == {"small": 1, "hard": 3}
    assert (old.frontier_share, new.frontier_share) == (0.25, 0.75)
    frontier = 1000 * 10e-6 + 500 * 20e-6  # one request at the frontier price, in USD
    assert new.routed[1].cost_usd == pytest.approx(frontier)
    assert new.routed[0].cost_usd < frontier / 100  # the pool at cents per million tokens
    assert new.cost_per_1k == pytest.approx(1000 * (3 * frontier + new.routed[0].cost_usd) / 4)
    assert [r.id for r, _, _ in report.changed] == ["r1", "r2"]
    assert report.changed_share == 0.5
    assert "complexity 0.35 ≥ 0.30" in report.changed[0][2].reason
    text = diff.render(report)
    assert "frontier share                       25.0%         75.0%" in text
    assert "changed decisions: 2 of 4 (50.0%)" in text
    assert "      2  small -> hard" in text
    doc = diff.as_json(report)
    assert doc["changed"][0] == {
        "id": "r1",
        "line": 2,
        "old": ["small", "pool"],
        "new": ["hard", "big"],
        "why": doc["changed"][0]["why"],
    }
    assert diff.breaches(report, diff.Thresholds()) == []
    passed = diff.breaches(report, diff.Thresholds(max_frontier_share=0.5, max_cost_increase=0.1, max_changed=0.25))
    assert len(passed) == 3
    assert passed[0] == "frontier share 75.0% is above --max-frontier-share 50.0%"


def test_a_model_the_new_policy_lacks_is_counted_as_unroutable(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(orjson.dumps({"request_id": "x", "model": "gone", "features": {"prompt_tokens": 3}}))
    traffic = read_traffic(path)
    report = diff.compare(
        traffic, diff.replay("a", policy(0.5), None, traffic, {}), diff.replay("b", policy(0.5), None, traffic, {})
    )
    assert report.new.errors == 1
    assert "does not exist" in (report.new.routed[0].error or "")
    assert diff.breaches(report, diff.Thresholds()) == []  # the same on both sides: not a regression


def test_requests_with_text_are_classified_once_for_both_policies(
    tmp_path: Path, classifier_model: ClassifierModel
) -> None:
    path = tmp_path / "t.jsonl"
    prompts = [
        "Summarise this paragraph: the meeting moved to Tuesday.",
        "Prove that there are infinitely many primes.",
    ]
    path.write_bytes(
        b"\n".join(orjson.dumps({"id": i, "messages": [{"role": "user", "content": p}]}) for i, p in enumerate(prompts))
    )
    calls: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return classifier_model.encode(texts)

    counted = ClassifierModel(encode, classifier_model.heads)
    traffic, vectors = read_traffic(path), dict[str, np.ndarray]()
    old = diff.replay("old", policy(0.99), counted, traffic, vectors)
    new = diff.replay("new", policy(0.0), counted, traffic, vectors)
    assert calls == [2]  # the second policy reuses the first one's embeddings
    assert [r.route for r in old.routed] == ["small", "small"]
    assert [r.route for r in new.routed] == ["hard", "hard"]
