"""Issue #12's reproductions, through the real app: what a caller may send, and what it may not reach."""

from __future__ import annotations

from typing import Any

import pytest

from router.emulator.app import STATE as EMULATOR_STATE
from tests.conftest import Canary, chat_body
from tests.functional.test_errors import assert_openai_error


@pytest.mark.parametrize("model", ["frontier", "pinned", "auto"])
@pytest.mark.parametrize(
    "extra",
    [
        {"api_base": "{canary}"},
        {"base_url": "{canary}"},
        {"api_key": "sk-mine"},
        {"headers": {"x-a": "1"}},
        {"extra_headers": {"Authorization": "Bearer x"}},
        {"organization": "org-x"},
        {"timeout": 0.001},
        {"metadata": {"a": "b"}},
        {"model_list": [{"model_name": "x", "litellm_params": {"api_base": "{canary}"}}]},
        {"fallbacks": ["gpt-4o"]},
        {"extra_body": {"api_base": "{canary}"}},
    ],
)
async def test_connection_fields_are_400_and_reach_nothing(
    basic: dict[str, Any], canary: Canary, model: str, extra: dict[str, Any]
) -> None:
    body = chat_body(model, **{k: _fill(v, canary.url) for k, v in extra.items()})
    resp = await basic["client"].post("/v1/chat/completions", json=body)
    assert resp.status == 400
    err = assert_openai_error(await resp.json())
    name = next(iter(extra))
    assert err["param"] in (name, f"extra_body.{name}", "api_base")
    assert "configures the upstream connection" in err["message"]
    assert canary.connections == 0
    for server in ("pool", "backup", "frontier"):
        assert basic[server].app[EMULATOR_STATE].requests_total == 0


def _fill(value: Any, url: str) -> Any:
    if isinstance(value, str):
        return value.replace("{canary}", url)
    if isinstance(value, dict):
        return {k: _fill(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, url) for v in value]
    return value


async def test_vllm_extras_reach_vllm_pools(basic: dict[str, Any]) -> None:
    body = chat_body("pinned", guided_choice=["yes", "no"], extra_body={"min_tokens": 2})
    resp = await basic["client"].post("/v1/chat/completions", json=body)
    assert resp.status == 200
    sent = basic["pool"].app[EMULATOR_STATE].last_request
    assert sent["guided_choice"] == ["yes", "no"]
    assert sent["min_tokens"] == 2
    assert "extra_body" not in sent


async def test_vllm_extras_on_a_frontier_route_are_400_naming_the_field(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post(
        "/v1/chat/completions", json=chat_body("frontier", guided_json={"type": "object"})
    )
    assert resp.status == 400
    err = assert_openai_error(await resp.json())
    assert err["param"] == "guided_json"
    assert "vLLM extra" in err["message"]
    assert basic["frontier"].app[EMULATOR_STATE].requests_total == 0


async def test_unknown_fields_are_400(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body("pinned", x_vendor={"a": 1}))
    assert resp.status == 400
    err = assert_openai_error(await resp.json())
    assert (err["param"], err["message"]) == ("x_vendor", "Unrecognized request argument supplied: x_vendor")
