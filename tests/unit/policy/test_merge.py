"""Merging policy files: fallback chains (the adapter follows where it is served), pinned and default
aliases, and duplicates across files named by both files."""

from __future__ import annotations

import pytest

from router.errors import PolicyError
from router.policy.compile import compile_texts
from router.types import Target


def test_routes_compile_to_chains_with_transitive_fallbacks() -> None:
    text = """
version: 1
clusters:
  a: {kind: vllm, endpoints: ["http://a/v1"], model: m, adapters: [x], fallbacks: [b]}
  b: {kind: vllm, endpoints: ["http://b/v1"], model: m, adapters: [x], fallbacks: [c]}
  c: {kind: vllm, endpoints: ["http://c/v1"], model: m}
models:
  auto: {default_route: r}
  pinned: {cluster: b, fallbacks: []}
routes:
  - {name: r, cluster: a, adapter: x}
  - {name: s, cluster: c, fallbacks: [a]}
"""
    policy = compile_texts([("p.yaml", text)], env={})
    chains = {r.route.name: r.decision.targets for r in policy.routes}
    # The adapter follows to fallbacks that serve it, and is dropped where they do not.
    assert chains["r"] == (Target("a", "x"), Target("b", "x"), Target("c"))
    assert chains["s"] == (Target("c"), Target("a"), Target("b"))
    assert policy.pinned["pinned"].targets == (Target("b"),)
    assert policy.defaults["auto"].route == "r"


def test_duplicates_across_files_name_both_files() -> None:
    a = 'version: 1\nclusters:\n  p: {kind: vllm, endpoints: ["http://a/v1"], model: m}\nmodels:\n  m: {cluster: p}\n'
    with pytest.raises(PolicyError) as info:
        compile_texts([("a.yaml", a), ("b.yaml", a)], env={})
    text = str(info.value)
    assert "b.yaml:3: clusters.p: duplicate cluster 'p' (first at a.yaml:3)" in text
    assert "b.yaml:5: models.m: duplicate model alias 'm' (first at a.yaml:5)" in text
