from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.errors import ModelNotFound
from router.policy.compile import compile_texts
from router.policy.engine import decide, mismatch
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


def test_mismatch_explains_why() -> None:
    rule = {r.route.name: r.route.match for r in POLICY.routes}
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
    matching = [r for r in POLICY.routes if mismatch(r.route.match, f) is None]
    assert d.route == (matching[0].route.name if matching else "general")
