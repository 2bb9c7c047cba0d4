"""Issue #12's reproductions, through the real app: what a caller may send, and what it may not reach."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.admin import reload
from router.emulator.app import STATE as EMULATOR_STATE
from router.errors import AttemptFailed, UpstreamRejected
from router.http.keys import STATE
from router.upstream.transport.frontier import classify_failure
from tests.conftest import Canary, ProxyFactory, chat_body, url
from tests.faults import fault_app
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


# -- blame: what the request caused never moves a breaker, an ejection or a cooldown ----------------

BLAME_POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: [{url}]
    model: m
    timeouts: {{connect_s: 1, first_byte_s: 5, total_s: 10}}
    outlier_detection: {{consecutive_failures: 2}}
    health_check: {{metrics_interval_s: 0}}
  api:
    kind: frontier
    model: openai/m
    api_base: {url}
    api_key_env: TEST_FRONTIER_KEY
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 1.0}}
    timeouts: {{connect_s: 1, first_byte_s: 5, total_s: 10}}
    cooldown: {{consecutive_failures: 2}}
models:
  pool: {{cluster: pool}}
  api: {{cluster: api}}
"""


async def test_a_hundred_bad_requests_leave_every_cluster_untouched(
    aiohttp_server: Any, proxy: ProxyFactory, canary: Canary
) -> None:
    fault = await aiohttp_server(fault_app())
    client = await proxy(BLAME_POLICY.format(url=url(fault)))
    sent: dict[int, int] = {}
    for i in range(100):
        model = ("pool", "api")[i % 2]
        kind = (i // 2) % 5
        headers: dict[str, str] = {}
        if kind == 0:  # the upstream rejects it (400)
            body = chat_body(model, "reject this")
        elif kind == 1:  # the caller's own deadline runs out
            body, headers = chat_body(model, "slow please"), {"x-router-timeout-ms": "50"}
        elif kind == 2:  # the same, streaming
            body, headers = chat_body(model, "slow please", stream=True), {"x-router-timeout-ms": "50"}
        elif kind == 3:  # a connection field, pointing at a listener that must see nothing
            body = chat_body(model, "hi", base_url=canary.url)
        else:  # a content part the provider library cannot translate: refused before it is tried
            body = {"model": model, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
        resp = await client.post("/v1/chat/completions", json=body, headers=headers)
        sent[resp.status] = sent.get(resp.status, 0) + 1
        assert resp.status in (400, 504), await resp.text()
    assert sent == {400: 60, 504: 40}
    assert canary.connections == 0
    for name in ("pool", "api"):
        cluster = client.app[STATE].serving.upstreams.get(name)
        assert cluster is not None
        for e in cluster.endpoints:
            assert (e.failures, e.outlier.consecutive, e.outlier.total_ejections) == (0, 0, 0), name
            assert e.available(cluster.clock())
        # ... and the next good request is served there at once.
        resp = await client.post("/v1/chat/completions", json=chat_body(name, "hello"))
        assert resp.status == 200
        assert resp.headers["x-router-cluster"] == name


async def test_translation_failures_are_the_clients_and_move_no_cooldown() -> None:
    # A real litellm error for a request it cannot translate (no network error behind it), and a real one
    # for a provider that cannot be reached.
    import litellm

    error_type: Any = litellm.APIConnectionError  # type: ignore[attr-defined]  # re-exported without __all__
    bad = error_type(message="OpenAIException - 'image_url'", llm_provider="openai", model="m")
    bad.__context__ = KeyError("image_url")
    failure = classify_failure(bad)
    assert isinstance(failure, UpstreamRejected)
    assert (failure.status, failure.answered) == (400, False)
    assert "could not be translated" in failure.message
    try:
        await litellm.acompletion(
            model="openai/m", messages=[{"role": "user", "content": "x"}], api_base="http://127.0.0.1:9/v1",
            api_key="sk-x", num_retries=0, timeout=5,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - whatever litellm raises is what is classified
        down = classify_failure(exc)
    assert isinstance(down, AttemptFailed)
    assert "127.0.0.1" not in down.public


# -- least exposure ------------------------------------------------------------------------------------

EXPOSURE_POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["http://admin:${{POOL_PASSWORD}}@127.0.0.1:9/v1?token=${{POOL_PASSWORD}}"]
    model: m
    health_check: {{metrics_interval_s: 0}}
  api:
    kind: frontier
    model: openai/m
    api_base: {url}
    api_key_env: TEST_FRONTIER_KEY
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 1.0}}
auth: {{anonymous: true{explain}}}
models:
  pool: {{cluster: pool}}
  api: {{cluster: api}}
  auto: {{default_route: general}}
routes:
  - name: internal
    description: internal callers ${{POOL_PASSWORD}}
    match: {{models: [auto], headers: {{x-internal-token: "tok-${{POOL_PASSWORD}}"}}, tenants: [team-secret]}}
    cluster: api
  - name: general
    target_only: true
    cluster: pool
"""
SECRET = "hunter2-pool-password"


async def exposure(aiohttp_server: Any, proxy: ProxyFactory, explain: str = "") -> Any:
    fault = await aiohttp_server(fault_app())
    text = EXPOSURE_POLICY.format(url=url(fault), explain=f", explain: {explain}" if explain else "")
    return await proxy(text, env={"POOL_PASSWORD": SECRET})


async def test_urls_with_credentials_never_leave_the_proxy(
    aiohttp_server: Any, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = await exposure(aiohttp_server, proxy)
    resp = await client.post("/v1/chat/completions", json=chat_body("pool"))
    assert resp.status in (502, 503)
    body = await resp.text()
    assert SECRET not in body
    assert "127.0.0.1" not in body  # clients hear the cluster, not where it lives
    assert "pool" in body
    # Operators see the endpoint, without its userinfo or query.
    state = client.app[STATE]
    policy = state.serving.policy
    open_admin = policy.auth.model_copy(update={"admin_without_key": True})
    state.serving = replace(state.serving, policy=replace(policy, auth=open_admin))
    for path in ("/metrics", "/v1/admin/clusters", "/readyz"):
        text = await (await client.get(path)).text()
        assert SECRET not in text, path
    clusters = await (await client.get("/v1/admin/clusters")).json()
    assert clusters["clusters"][0]["endpoints"][0]["url"] == "http://127.0.0.1:9/v1"
    assert "http://127.0.0.1:9/v1" in await (await client.get("/metrics")).text()
    assert SECRET not in caplog.text


async def test_provider_words_reach_the_client_only_about_its_input(aiohttp_server: Any, proxy: ProxyFactory) -> None:
    client = await exposure(aiohttp_server, proxy)
    denied = await client.post("/v1/chat/completions", json=chat_body("api", "denied please"))
    assert denied.status == 502
    err = assert_openai_error(await denied.json())
    assert "sk-OPERA" not in err["message"]
    assert err["message"] == "Every upstream attempt failed: api: answered HTTP 401"
    rejected = await client.post("/v1/chat/completions", json=chat_body("api", "reject please"))
    assert rejected.status == 400
    assert "bad input" in assert_openai_error(await rejected.json())["message"]


async def test_explain_is_for_admins_by_default(aiohttp_server: Any, proxy: ProxyFactory) -> None:
    client = await exposure(aiohttp_server, proxy)
    resp = await client.post("/v1/route/explain", json=chat_body("auto"))
    assert resp.status == 403
    assert assert_openai_error(await resp.json())["type"] == "permission_error"


async def test_the_tenant_view_of_explain_shows_no_policy_internals(aiohttp_server: Any, proxy: ProxyFactory) -> None:
    client = await exposure(aiohttp_server, proxy, explain="tenants")
    resp = await client.post("/v1/route/explain", json=chat_body("auto"), headers={"x-internal-token": "guess"})
    assert resp.status == 200
    text = await resp.text()
    for secret in (SECRET, "tok-", "guess", "team-secret", "policy.yaml", "internal callers", "x-internal-token"):
        assert secret not in text, secret
    doc = orjson.loads(text)
    assert doc["view"] == "tenant"
    assert doc["decision"]["route"] == "general"
    assert "rules" not in doc


async def test_probes_get_a_status_and_operators_the_details(aiohttp_server: Any, proxy: ProxyFactory) -> None:
    client = await exposure(aiohttp_server, proxy)
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ready"}
    assert (await client.get("/healthz")).status == 200
    metrics = await client.get("/metrics")
    assert metrics.status == 403  # anonymous callers are not operators
    assert assert_openai_error(await metrics.json())["type"] == "permission_error"
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    assert ready.headers["Server"] == "hybrid-llm-router"
    assert "aiohttp" not in (await client.post("/v1/chat/completions", json={})).headers.get("Server", "")


@pytest.mark.parametrize("model", ["gemini/gemini-2.0-flash", "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"])
async def test_litellm_refuses_to_fetch_private_image_urls(canary: Canary, model: str) -> None:
    # For these providers litellm downloads image URLs from the proxy's own host; 1.106.2 refuses private
    # and loopback addresses (SECURITY.md relies on it: this test fails if an upgrade changes that).
    import litellm

    image = {"type": "image_url", "image_url": {"url": canary.url + "/secret.png"}}
    with pytest.raises(Exception) as info:  # noqa: PT011 - whichever error litellm raises, it must raise
        await litellm.acompletion(
            model=model,
            messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, image]}],
            api_base="http://127.0.0.1:9",
            api_key="k",
            num_retries=0,
            timeout=5,
            max_tokens=5,
        )
    assert canary.connections == 0
    assert isinstance(classify_failure(info.value), UpstreamRejected)  # the caller's doing: a 400


async def test_a_rejected_reload_never_shows_an_expanded_secret(
    aiohttp_server: Any, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await exposure(aiohttp_server, proxy)
    good = EXPOSURE_POLICY.format(url="http://127.0.0.1:9/v1", explain="")
    bad = good.replace(
        "http://admin:${POOL_PASSWORD}@127.0.0.1:9/v1?token=${POOL_PASSWORD}", "ftp://u:${POOL_PASSWORD}@h/v1"
    )
    assert bad != good
    (tmp_path / "policy.yaml").write_text(bad)
    state = client.app[STATE]
    assert await reload.reload_policy(state) is False
    assert state.last_reload_error is not None
    assert "${POOL_PASSWORD}" in state.last_reload_error
    assert SECRET not in state.last_reload_error
    ready = await (await client.get("/readyz")).json()
    assert ready == {"status": "ready"}  # callers without an admin key see no details at all


async def test_bad_authorization_bytes_are_a_counted_401(basic: dict[str, Any]) -> None:
    # Issue #12: non-UTF-8 bytes in Authorization were a 500, and not counted as an auth failure.
    server = basic["client"].server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    body = json.dumps(chat_body("pinned")).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer sk-\xff\xfe\xfd\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 401"), head
    metrics = await (await basic["client"].get("/metrics")).text()
    assert 'router_auth_failures_total{code="invalid_api_key"} 1.0' in metrics


async def test_a_wrong_key_is_401_even_with_anonymous_access(basic: dict[str, Any]) -> None:
    headers = {"Authorization": "Bearer sk-typo"}
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body("pinned"), headers=headers)
    assert resp.status == 401
    assert assert_openai_error(await resp.json())["code"] == "invalid_api_key"
    assert (await basic["client"].post("/v1/chat/completions", json=chat_body("pinned"))).status == 200
