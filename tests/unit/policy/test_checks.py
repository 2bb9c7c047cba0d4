"""The cross-reference checks after all files are read: every problem reported, each with its place."""

from __future__ import annotations

import pytest

from router.errors import PolicyError
from router.policy.compile import compile_texts


def test_every_error_is_reported_not_just_the_first() -> None:
    text = """
version: 1
clusters:
  a: {kind: vllm, endpoints: ["http://a/v1"], model: m, fallbacks: [nope, a]}
models:
  x: {cluster: missing}
  auto: {default_route: r}
routes:
  - {name: r, cluster: a, match: {models: [ghost]}}
"""
    with pytest.raises(PolicyError) as info:
        compile_texts([("p.yaml", text)], env={})
    messages = [i.message for i in info.value.issues]
    assert "unknown cluster 'nope'" in messages
    assert "fallback cycle: 'a' falls back to itself" in messages
    assert "unknown cluster 'missing'" in messages
    assert "unknown model alias 'ghost'" in messages


def test_a_budget_that_downgrades_needs_a_self_hosted_target() -> None:
    text = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: ["http://a/v1"], model: m}
  big: {kind: frontier, model: openai/gpt-4o}
models:
  m: {cluster: big}
budgets:
  - {name: cap, tenant: '*', usd_per_day: 1, on_exhausted: downgrade, downgrade_to: big}
"""
    with pytest.raises(PolicyError) as info:
        compile_texts([("p.yaml", text)], env={})
    assert "budgets" in str(info.value)
    assert compile_texts([("p.yaml", text.replace("downgrade_to: big", "downgrade_to: pool"))], env={}).budgets


def test_a_hedge_needs_a_next_target_and_says_where() -> None:
    text = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: ["http://a/v1"], model: m}
  big: {kind: frontier, model: openai/gpt-4o, default_max_tokens: 256}
models:
  m:
    cluster: pool
    latency: {hedge_after_ms: 300}
"""
    with pytest.raises(PolicyError) as info:
        compile_texts([("p.yaml", text)], env={})
    (issue,) = info.value.issues
    assert (issue.file, issue.line) == ("p.yaml", 9)
    assert "latency.hedge_after_ms" in str(info.value)
    assert "fallbacks" in issue.message
    fixed = text.replace("cluster: pool\n", "cluster: pool\n    fallbacks: [big]\n")
    policy = compile_texts([("p.yaml", fixed)], env={})
    latency = policy.pinned["m"].latency
    assert latency is not None
    assert latency.hedge_s == 0.3


def test_nested_blocks_are_checked_at_their_own_line_and_names_get_a_suggestion() -> None:
    text = """version: 1
clusters:
  pool-small: {kind: vllm, endpoints: ["http://a/v1"], model: m}
models:
  auto: {default_route: general}
routes:
  - name: r
    cluster: pool-smal
    match:
      any:
        - {tasks: [codding]}
        - {}
      not: {models: [autoo]}
  - {name: general, target_only: true, cluster: pool-small}
budgets:
  - {name: b, route: genral, usd_per_day: 1}
"""
    with pytest.raises(PolicyError) as info:
        compile_texts([("p.yaml", text)], env={})
    got = {(i.line, i.path): i.message for i in info.value.issues}
    assert got[(8, "routes[0].cluster")] == "unknown cluster 'pool-smal'; did you mean `pool-small`?"
    assert got[(11, "routes[0].match.any[0].tasks[0]")] == "unknown task 'codding'; did you mean `coding`?"
    assert got[(12, "routes[0].match.any[1]")].startswith("an empty block holds for every request")
    assert got[(13, "routes[0].match.not.models[0]")] == "unknown model alias 'autoo'; did you mean `auto`?"
    assert got[(16, "budgets[0].route")] == "unknown route 'genral'; did you mean `general`?"
