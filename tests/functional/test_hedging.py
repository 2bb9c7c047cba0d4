"""Hedged requests through the whole proxy, over real sockets (issue #14, part 3): a first target whose
first token is late (the fault upstream's ``fb-slow-first``, 2 s) is hedged onto the fallback after the
route's ``hedge_after_ms``; the first answer reaches the client, the other request is cancelled and given
back, and the slow endpoint is not blamed. For vLLM clusters and frontier ones (litellm), streamed and not."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from tests.fault_table import score
from tests.faults import STATE, fault_app


def _policy(base: str, kind: str) -> str:
    def cluster(name: str, model: str, extra: str) -> str:
        if kind == "vllm":
            return (
                f"  {name}: {{kind: vllm, model: {model}, endpoints: ['{base}'], "
                f"health_check: {{metrics_interval_s: 0}}{extra}}}"
            )
        return (
            f"  {name}: {{kind: frontier, model: openai/{model}, api_base: '{base}', api_key_env: TEST_FRONTIER_KEY, "
            f"default_max_tokens: 64, price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 1}}{extra}}}"
        )

    return "\n".join(
        [
            "version: 1",
            "clusters:",
            cluster("slow", "fb-slow-first", ", fallbacks: [ok]"),
            cluster("ok", "fb-ok", ""),
            "models:",
            "  fb-slow-first: {cluster: slow, latency: {hedge_after_ms: 200}}",
            "costs: {baseline_model: openai/gpt-4o, baseline_price: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}}",
        ]
    )


def _sample(metrics: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{"):
            head, value = line.rsplit(" ", 1)
            got = ",".join(sorted(head[len(name) + 1 : -1].split(",")))
            if got == want:
                return float(value)
    return 0.0


@pytest.mark.parametrize("kind", ["vllm", "frontier"])
async def test_a_late_first_token_is_hedged_onto_the_fallback(aiohttp_server: Any, proxy: Any, kind: str) -> None:
    server = await aiohttp_server(fault_app())
    client = await proxy(_policy(f"http://127.0.0.1:{server.port}/v1", kind))
    state = server.app[STATE]
    for stream in (False, True):
        state.seen.clear()
        started = time.monotonic()
        row = await score(client, "fb-slow-first", stream, lambda m: len(state.seen.get(m, [])))
        assert (row.outcome, row.detail, row.attempts) == ("rescued", "ok", 1), row  # the exact answer, from ok
        assert time.monotonic() - started < 1.5  # the hedge's 200 ms and the answer, not the 2 s first token
        assert len(state.seen["fb-ok"]) == 1
    doc = await (await client.get("/v1/admin/clusters")).json()
    slow = next(c for c in doc["clusters"] if c["name"] == "slow")
    assert slow["in_flight"] == 0
    assert slow["retries_in_flight"] == 0
    assert all(e["consecutive_failures"] == 0 and e["state"] == "up" for e in slow["endpoints"])
    metrics = await (await client.get("/metrics")).text()
    assert _sample(metrics, "router_hedges_total", route="model:fb-slow-first", outcome="hedge") == 2
    assert _sample(metrics, "router_upstream_attempts_total", cluster="slow", outcome="cancelled") == 2
    assert _sample(metrics, "router_upstream_attempts_total", cluster="slow", outcome="error") == 0


async def test_without_a_hedge_the_same_request_waits_for_the_slow_first_token(aiohttp_server: Any, proxy: Any) -> None:
    server = await aiohttp_server(fault_app())
    text = _policy(f"http://127.0.0.1:{server.port}/v1", "vllm").replace(", latency: {hedge_after_ms: 200}", "")
    client = await proxy(text)
    body = {"model": "fb-slow-first", "messages": [{"role": "user", "content": "tell me"}]}
    started = time.monotonic()
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    assert resp.headers["x-router-cluster"] == "slow"
    assert orjson.loads(await resp.read())["choices"][0]["message"]["content"]
    assert time.monotonic() - started >= 2.0  # the baseline the hedge improves on
