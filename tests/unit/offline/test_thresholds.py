"""A complexity rule's threshold is read against all traffic: what earlier rules and the default route
already send to the frontier counts too."""

from __future__ import annotations

import pytest

from router.offline import thresholds
from router.policy.compile import Policy, compile_texts
from router.types import RequestFeatures

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, model: m, endpoints: ["http://10.0.0.1/v1"]}
  big: {kind: frontier, model: openai/gpt-4o}
models:
  auto: {default_route: small}
routes:
  - {name: coding, priority: 100, cluster: big, match: {tasks: [coding]}}
  - {name: hard, priority: 50, cluster: big, match: {min_complexity: 0.5}}
  - {name: small, target_only: true, cluster: pool}
"""


def policy() -> Policy:
    return compile_texts([("p.yaml", POLICY)], env={})


def request(task: str, complexity: float) -> RequestFeatures:
    return RequestFeatures("auto", None, {}, 10, False, False, False, "", task, 0.9, complexity)


def test_the_share_counts_what_earlier_rules_send_and_the_rule_moves_only_the_rest() -> None:
    # Two coding requests go to the frontier whatever the threshold (the coding rule is evaluated first).
    features = [request("coding", 0.9), request("coding", 0.1)]
    features += [request("open_qa", c) for c in (0.2, 0.4, 0.6, 0.8)]
    p = policy()
    c = thresholds.curve(p, thresholds.complexity_rule(p), features)
    assert c.taken == (False, False, True, True, True, True)
    assert c.floor == pytest.approx(2 / 6)
    assert c.ceiling == 1.0
    assert c.share(0.5) == pytest.approx(4 / 6)  # 2 coding + 0.6 and 0.8
    assert c.share(0.3) == pytest.approx(5 / 6)
    found = c.threshold_for(4 / 6)
    assert found is not None
    assert found[0] == 0.6  # ties go to the higher threshold
    assert found[1] == pytest.approx(4 / 6)
    assert c.threshold_for(0.1) is None  # below what the coding rule alone sends: out of reach
    text = thresholds.render(c, "p.yaml")
    assert "without the rule: 33.3%; with it at 0: 100.0%" in text
    assert "0.5: 66.7%" in text
    assert "10%: out of reach" in text


def test_the_rule_is_named_or_the_only_one_with_a_threshold() -> None:
    p = policy()
    assert thresholds.complexity_rule(p).route.name == "hard"
    assert thresholds.complexity_rule(p, "coding").route.name == "coding"
    with pytest.raises(ValueError, match="no rule named 'nope'"):
        thresholds.complexity_rule(p, "nope")
    two = compile_texts([("p.yaml", POLICY.replace("tasks: [coding]", "min_complexity: 0.9"))], env={})
    with pytest.raises(ValueError, match="name the rule with --rule: rules with min_complexity: coding, hard"):
        thresholds.complexity_rule(two)
