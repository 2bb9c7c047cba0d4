from __future__ import annotations

import asyncio
from typing import Any

from router.emulator.app import STATE


async def test_models_health_and_unknown_model(emulator: Any, aiohttp_client: Any) -> None:
    server = await emulator(model="base", lora=["a1"])
    client = await aiohttp_client(server)
    models = await (await client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["base", "a1"]
    assert (await client.get("/health")).status == 200
    resp = await client.post("/v1/chat/completions", json={"model": "zzz", "messages": [{"role": "user"}]})
    assert resp.status == 404
    assert "does not exist" in (await resp.json())["error"]["message"]
    assert (await client.post("/v1/chat/completions", data=b"{")).status == 400


async def test_vllm_metrics_follow_real_in_flight_requests(emulator: Any, aiohttp_client: Any) -> None:
    server = await emulator(model="base", latency_ms=400, max_num_seqs=1)
    client = await aiohttp_client(server)
    body = {"model": "base", "messages": [{"role": "user", "content": "x"}]}
    pending = [asyncio.create_task(client.post("/v1/chat/completions", json=body)) for _ in range(3)]
    await asyncio.sleep(0.2)
    text = await (await client.get("/metrics")).text()
    assert 'vllm:num_requests_running{model_name="base"} 1.0' in text
    assert 'vllm:num_requests_waiting{model_name="base"} 2.0' in text
    usage = [line for line in text.splitlines() if line.startswith("vllm:kv_cache_usage_perc{")]
    assert float(usage[0].split()[-1]) > 0
    for task in pending:
        (await task).close()
    text = await (await client.get("/metrics")).text()
    assert 'vllm:num_requests_running{model_name="base"} 0.0' in text
    assert "vllm:time_to_first_token_seconds_bucket" in text
    assert 'vllm:generation_tokens_total{model_name="base"} 48.0' in text


async def test_config_changes_live(emulator: Any, aiohttp_client: Any) -> None:
    server = await emulator(model="base")
    client = await aiohttp_client(server)
    resp = await client.post("/emulator/config", json={"failure_rate": 1.0, "failure_status": 503})
    assert (await resp.json())["config"]["failure_rate"] == 1.0
    body = {"model": "base", "messages": [{"role": "user", "content": "x"}]}
    assert (await client.post("/v1/chat/completions", json=body)).status == 503
    assert (await client.post("/emulator/config", json={"failure_rate": 7})).status == 400
    assert server.app[STATE].config.failure_rate == 1.0
