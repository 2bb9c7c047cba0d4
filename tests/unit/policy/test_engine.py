from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.errors import ModelNotFound
from router.policy.compile import CompiledRoute, Policy, compile_texts
from router.policy.engine import decide, evaluate, explain
from router.types import RequestFeatures

POLICY = compile_texts(
    [
        (
            "p.yaml",
            """
version: 1
clusters:
  small: {kind: vllm, endpoints: ["http://s/v1"], model: m}
  big: {kind: vllm, endpoints: ["http://b/v1"], model: m}
models:
  auto: {default_route: general}
  other: {default_route: general}
  pinned: {cluster: big}
routes:
  - {name: team, match: {models: [auto], headers: {x-team: search}}, cluster: big}
  - {name: tenant, match: {tenants: [acme]}, cluster: big}
  - {name: tools, match: {models: [auto], has_tools: true}, cluster: big}
  - {name: images, match: {has_images: true, stream: false}, cluster: big}
  - {name: long, match: {min_prompt_tokens: 1000, max_prompt_tokens: 5000}, cluster: big}
  - {name: general, match: {models: [auto]}, cluster: small}
""",
        )
    ],
    env={},
)


def feats(alias: str = "auto", **kw: object) -> RequestFeatures:
    base: dict[str, object] = {
        "alias": alias,
        "tenant": None,
        "headers": {},
        "prompt_tokens": 10,
        "has_tools": False,
        "has_images": False,
        "stream": False,
    }
    base.update(kw)
    return RequestFeatures(**base)  # type: ignore[arg-type]  # test helper: keys checked by the dataclass


def test_pinned_alias_skips_rules() -> None:
    d = decide(POLICY, feats("pinned", has_tools=True))
    assert (d.route, d.pinned, d.primary.cluster) == ("model:pinned", True, "big")


@pytest.mark.parametrize(
    ("kw", "route"),
    [
        ({}, "general"),
        ({"headers": {"x-team": "search"}}, "team"),
        ({"headers": {"x-team": "ads"}}, "general"),
        ({"tenant": "acme"}, "tenant"),
        ({"has_tools": True}, "tools"),
        ({"has_images": True}, "images"),
        ({"has_images": True, "stream": True}, "general"),
        ({"prompt_tokens": 1000}, "long"),
        ({"prompt_tokens": 5001}, "general"),
    ],
)
def test_first_matching_rule_wins(kw: dict[str, object], route: str) -> None:
    assert decide(POLICY, feats("auto", **kw)).route == route


def test_no_rule_matches_uses_the_alias_default() -> None:
    d = decide(POLICY, feats("other"))
    assert d.route == "general"
    assert "no rule matched" in d.reason


def test_unknown_alias_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound) as info:
        decide(POLICY, feats("gpt-9"))
    assert info.value.status == 404
    assert "auto, other, pinned" in info.value.message


def mismatch(rule: CompiledRoute, f: RequestFeatures) -> str | None:
    matched, why = evaluate(rule, f, 0.5)
    return None if matched else why


def test_mismatch_explains_why() -> None:
    rule = {r.route.name: r for r in POLICY.routes}
    assert mismatch(rule["team"], feats()) == "header 'x-team' absent"
    assert mismatch(rule["long"], feats()) == "prompt tokens 10 < 1000"
    assert mismatch(rule["tools"], feats("other")) == "model 'other' not in ['auto']"


@given(
    alias=st.sampled_from(["auto", "other", "pinned"]),
    tenant=st.sampled_from([None, "acme", "zeta"]),
    team=st.sampled_from([None, "search", "ads"]),
    tokens=st.integers(0, 10_000),
    tools=st.booleans(),
    images=st.booleans(),
    stream=st.booleans(),
)
def test_decision_is_the_first_rule_that_matches(
    alias: str, tenant: str | None, team: str | None, tokens: int, tools: bool, images: bool, stream: bool
) -> None:
    f = feats(
        alias,
        tenant=tenant,
        headers={"x-team": team} if team else {},
        prompt_tokens=tokens,
        has_tools=tools,
        has_images=images,
        stream=stream,
    )
    d = decide(POLICY, f)
    assert d == decide(POLICY, f)  # deterministic
    if alias == "pinned":
        assert d.pinned
        return
    matching = [r for r in POLICY.routes if mismatch(r, f) is None]
    assert d.route == (matching[0].route.name if matching else "general")


CLASSIFIED = compile_texts(
    [
        (
            "c.yaml",
            """
version: 1
clusters:
  small: {kind: vllm, endpoints: ["http://s/v1"], model: m, adapters: [ext]}
  big: {kind: vllm, endpoints: ["http://b/v1"], model: m}
  mini: {kind: vllm, endpoints: ["http://m/v1"], model: m}
models:
  auto: {default_route: general}
classifier:
  min_confidence: 0.6
  low_confidence_route: unsure
  tasks:
    triage: {examples: [a, b, c]}
routes:
  - {name: general, target_only: true, cluster: small}
  - {name: unsure, target_only: true, cluster: mini}
  - {name: extraction, match: {tasks: [extraction]}, cluster: small, adapter: ext}
  - {name: hard, priority: 10, match: {tasks: [extraction, triage], min_complexity: 0.7}, cluster: big}
  - {name: loose, match: {tasks: [coding], min_task_confidence: 0.3}, cluster: big}
  - {name: doubtful, match: {max_task_confidence: 0.2}, cluster: big}
  - {name: legal, priority: 5, match: {keywords: [subpoena, "cease and desist"]}, cluster: big}
  - {name: ticket, priority: 5, match: {regex: "(?i)ticket #[0-9]+"}, cluster: big}
  - {name: easy, match: {max_complexity: 0.1}, cluster: mini}
""",
        )
    ],
    env={},
)


def cfeats(task: str | None, confidence: float | None, complexity: float | None, text: str = "") -> RequestFeatures:
    return feats(task=task, task_confidence=confidence, complexity=complexity, last_user_message=text)


@pytest.mark.parametrize(
    ("f", "route", "rule"),
    [
        (cfeats("extraction", 0.9, 0.3), "extraction", "extraction"),
        # Priority: `hard` is listed after `extraction` but evaluated first.
        (cfeats("extraction", 0.9, 0.8), "hard", "hard"),
        (cfeats("triage", 0.8, 0.9), "hard", "hard"),
        # Below the policy's min_confidence a task condition does not hold ...
        (cfeats("extraction", 0.55, 0.3), "unsure", None),
        # ... unless the rule sets its own threshold.
        (cfeats("coding", 0.35, 0.3), "loose", "loose"),
        (cfeats("math", 0.15, 0.3), "doubtful", "doubtful"),
        (cfeats("math", 0.9, 0.05), "easy", "easy"),
        (cfeats("math", 0.9, 0.3), "general", None),
        # Keywords are whole words, case-insensitive; phrases match across whitespace.
        (cfeats("math", 0.9, 0.3, "We got a SUBPOENA today"), "legal", "legal"),
        (cfeats("math", 0.9, 0.3, "send a cease  and\ndesist letter"), "legal", "legal"),
        (cfeats("math", 0.9, 0.3, "subpoenas are common"), "general", None),
        (cfeats("math", 0.9, 0.3, "about Ticket #4471"), "ticket", "ticket"),
        # Not classified (encoder down): task and complexity conditions never hold; the default applies.
        (cfeats(None, None, None), "general", None),
    ],
)
def test_classified_rules(f: RequestFeatures, route: str, rule: str | None) -> None:
    d = decide(CLASSIFIED, f)
    assert (d.route, d.rule) == (route, rule)


def test_reason_names_the_rule_and_the_values() -> None:
    d = decide(CLASSIFIED, cfeats("extraction", 0.91, 0.82))
    assert d.reason == "rule 'hard': task extraction (0.91 ≥ 0.60), complexity 0.82 ≥ 0.70"
    low = decide(CLASSIFIED, cfeats("extraction", 0.42, 0.3))
    assert low.reason == "no rule matched; task extraction confidence 0.42 < 0.60: low-confidence route"
    assert low.primary.cluster == "mini"


def test_explain_gives_a_verdict_on_every_rule() -> None:
    trace = explain(CLASSIFIED, cfeats("extraction", 0.9, 0.3))
    verdicts = {v.route: v for v in trace.rules}
    assert [v.route for v in trace.rules][:3] == ["hard", "legal", "ticket"]  # priority order
    assert verdicts["hard"].why == "complexity 0.30 < 0.70"
    assert verdicts["legal"].why == "no keyword found"
    assert verdicts["extraction"].matched
    assert verdicts["easy"].why == "not reached"
    assert trace.decision.route == "extraction"
    assert not trace.low_confidence
    assert explain(CLASSIFIED, cfeats("math", 0.3, 0.5)).low_confidence


def test_target_only_routes_are_not_rules() -> None:
    policy: Policy = CLASSIFIED
    assert {r.route.name for r in policy.routes}.isdisjoint({"general", "unsure"})
    assert policy.needs_classifier
    assert not POLICY.needs_classifier


COMPOSED = compile_texts(
    [
        (
            "p.yaml",
            """
version: 1
clusters:
  small: {kind: vllm, endpoints: ["http://s/v1"], model: m}
  big: {kind: vllm, endpoints: ["http://b/v1"], model: m}
models:
  auto: {default_route: general}
routes:
  # One intent, one rule: coding by the classifier, or a stack trace in the text; never for tenant internal.
  - name: code
    priority: 10
    match:
      any: [{tasks: [coding]}, {keywords: [stack trace, traceback]}]
      not: {tenants: [internal]}
    cluster: big
  - name: both
    match: {all: [{any: [{has_tools: true}, {has_images: true}]}, {any: [{tenants: [acme]}, {stream: true}]}]}
    cluster: big
  - {name: general, target_only: true, cluster: small}
""",
        )
    ],
    env={},
)


@pytest.mark.parametrize(
    ("kw", "route", "why"),
    [
        ({"task": "coding", "task_confidence": 0.9}, "code", "any[0]: task coding (0.90 ≥ 0.50), not (tenant None not"),
        ({"last_user_message": "here is the Traceback:"}, "code", "any[1]: keyword 'Traceback'"),
        ({"last_user_message": "a stack trace", "tenant": "internal"}, "general", "not: tenant 'internal'"),
        (
            {"task": "math", "task_confidence": 0.9},
            "general",
            "none of any: [0] task math not in ['coding']; [1] no keyword",
        ),
        (
            {"has_tools": True, "tenant": "acme"},
            "both",
            "all[0]: any[0]: has_tools True, all[1]: any[0]: tenant 'acme'",
        ),
        ({"has_images": True, "stream": True}, "both", "all[0]: any[1]: has_images True, all[1]: any[1]: stream True"),
        ({"has_tools": True}, "general", "all[1]: none of any: [0] tenant None not in ['acme']; [1] stream is False"),
    ],
)
def test_any_all_and_not_blocks_compose_and_say_why(kw: dict[str, object], route: str, why: str) -> None:
    trace = explain(COMPOSED, feats("auto", **kw))
    assert trace.decision.route == route
    verdicts = " | ".join(v.why for v in trace.rules)
    assert why in verdicts
