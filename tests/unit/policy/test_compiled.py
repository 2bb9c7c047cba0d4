"""The compiled policy the engine reads: keyword patterns, whether a classifier is needed, output caps."""

from __future__ import annotations

from router.policy.compile import compile_texts
from router.policy.schema_match import keyword_pattern

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: ["http://a/v1"], model: m, default_max_tokens: 256}
  big: {kind: frontier, model: openai/gpt-4o}
models:
  auto: {default_route: r}
routes:
  - {name: r, cluster: big, match: {models: [auto]}}
costs: {baseline_model: openai/gpt-4o, default_max_tokens: 1024}
"""


def test_keywords_match_whole_words_case_insensitively() -> None:
    p = keyword_pattern(["prove", "c++"])
    assert p.search("Please PROVE it")
    assert p.search("write it in C++ now")
    assert not p.search("an improved proof")


def test_the_classifier_is_needed_only_when_a_rule_reads_it() -> None:
    assert not compile_texts([("p.yaml", POLICY)], env={}).needs_classifier
    tasks = POLICY.replace("match: {models: [auto]}", "match: {tasks: [summarization]}")
    assert compile_texts([("p.yaml", tasks)], env={}).needs_classifier


def test_output_caps_come_from_the_cluster_else_the_policy_default() -> None:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    assert policy.output_cap("pool") == 256
    assert policy.output_cap("big") == 1024
