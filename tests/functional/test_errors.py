"""Every failure is OpenAI error JSON with the right status, never a traceback."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import BASIC_POLICY, chat_body, single_pool, url


def assert_openai_error(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "Traceback" not in err["message"]
    return err


async def test_malformed_json_is_400(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", data=b"{not json")
    assert resp.status == 400
    err = assert_openai_error(await resp.json())
    assert err["type"] == "invalid_request_error"
    assert "not valid JSON" in err["message"]
    assert "x-request-id" in resp.headers


async def test_non_object_body_is_400(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", data=b"[1, 2]")
    assert resp.status == 400
    assert_openai_error(await resp.json())


async def test_missing_messages_names_the_field(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json={"model": "auto"})
    assert resp.status == 400
    err = assert_openai_error(await resp.json())
    assert err["param"] == "messages"


async def test_bad_nested_field_is_named(basic: dict[str, Any]) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}
    resp = await basic["client"].post("/v1/chat/completions", json=body)
    assert resp.status == 400
    assert assert_openai_error(await resp.json())["param"] == "max_tokens"


async def test_unknown_alias_is_404(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body("gpt-5-ultra"))
    assert resp.status == 404
    err = assert_openai_error(await resp.json())
    assert err["code"] == "model_not_found"
    assert err["param"] == "model"


async def test_body_over_limit_is_413(emulator: Any, proxy: Any) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    client = await proxy(
        BASIC_POLICY.format(pool=url(pool), backup=url(pool), frontier=url(pool), pool_limit=8), max_body_bytes=2048
    )
    resp = await client.post("/v1/chat/completions", json=chat_body(content="x" * 5000))
    assert resp.status == 413
    err = assert_openai_error(await resp.json())
    assert "2048" in err["message"]


async def test_unknown_path_and_method_are_openai_errors(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/completions-nope", json={})
    assert resp.status == 404
    assert_openai_error(await resp.json())
    resp = await basic["client"].get("/v1/chat/completions")
    assert resp.status == 405
    assert_openai_error(await resp.json())


async def test_upstream_client_error_passes_through(emulator: Any, proxy: Any) -> None:
    _, client = await single_pool(emulator, proxy, failure_rate=1.0, failure_status=400)
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
    assert resp.status == 400
    assert assert_openai_error(await resp.json())["message"] == "injected failure"


async def test_every_target_failed_is_502(emulator: Any, proxy: Any) -> None:
    _, client = await single_pool(emulator, proxy, failure_rate=1.0)
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
    assert resp.status == 502
    err = assert_openai_error(await resp.json())
    assert err["code"] == "upstream_error"
    assert "HTTP 500" in err["message"]
    assert resp.headers["x-router-route"] == "model:pinned"


async def test_upstream_timeout_is_504(emulator: Any, proxy: Any) -> None:
    slow = await emulator(model="m", latency_ms=3000)
    policy = f"""
version: 1
clusters:
  slow:
    kind: vllm
    endpoints: ["{url(slow)}"]
    model: m
    timeouts: {{connect_s: 0.5, first_byte_s: 0.3, total_s: 1}}
models:
  m: {{cluster: slow}}
"""
    client = await proxy(policy)
    resp = await client.post("/v1/chat/completions", json=chat_body("m"))
    assert resp.status == 504
    assert assert_openai_error(await resp.json())["code"] == "upstream_timeout"


async def test_full_cluster_answers_503_fast_with_retry_after(emulator: Any, proxy: Any) -> None:
    _, client = await single_pool(emulator, proxy, pool_limit=1, ttft_ms=1500)
    holder = asyncio.create_task(client.post("/v1/chat/completions", json=chat_body("pinned", stream=True)))
    await asyncio.sleep(0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
    assert resp.status == 503
    assert loop.time() - started < 1.0
    assert resp.headers["Retry-After"] == "1"
    err = assert_openai_error(await resp.json())
    assert "full" in err["message"]
    (await holder).close()


async def test_unreachable_upstream_then_fallback_then_502(proxy: Any) -> None:
    policy = """
version: 1
clusters:
  a: {kind: vllm, endpoints: ["http://127.0.0.1:9/v1"], model: m, fallbacks: [b]}
  b: {kind: vllm, endpoints: ["http://127.0.0.1:9/v1"], model: m}
models:
  m: {cluster: a}
"""
    client = await proxy(policy)
    resp = await client.post("/v1/chat/completions", json=chat_body("m"))
    assert resp.status == 502
    err = assert_openai_error(await resp.json())
    assert "a: could not be reached" in err["message"]
    assert "127.0.0.1" not in err["message"]  # clients hear the cluster, not its URL
