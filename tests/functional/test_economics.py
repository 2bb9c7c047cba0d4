"""Utilisation-true economics through the real app: answers from an emulated pool and an emulated frontier
API, the pool's vLLM counters driven by the test (traffic that did not pass the router), and the figures
read back from ``GET /v1/admin/usage``, ``GET /v1/admin/capacity``, ``router capacity`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from router.accounting import windows
from router.cli.main import main
from router.emulator.app import STATE as EMU
from tests.conftest import EmulatorFactory, ProxyFactory, chat_body, url

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["{pool}"]
    model: small-model
    health_check: {{metrics_interval_s: 0.1}}
    cost: {{usd_per_gpu_hour: 3.6, input_tokens_per_second: 100000, output_tokens_per_second: 10000}}
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/frontier-model
    api_key_env: TEST_FRONTIER_KEY
    api_base: {api}
    price: {{input_usd_per_mtok: 5, output_usd_per_mtok: 15}}
models:
  cheap: {{cluster: pool}}
  dear: {{cluster: api}}
costs: {{baseline_model: openai/gpt-4o, baseline_price: {{input_usd_per_mtok: 5, output_usd_per_mtok: 15}}}}
"""
OUTSIDE = 5000  # prompt tokens the pool processed for a client that does not go through the router


async def _stack(emulator: EmulatorFactory, proxy: ProxyFactory) -> tuple[Any, Any]:
    pool = await emulator(model="small-model")
    api = await emulator(model="frontier-model")
    client = await proxy(POLICY.format(pool=url(pool), api=url(api)), economics_interval_s=0.1)
    for model in ("cheap", "cheap", "cheap", "dear"):
        resp = await client.post("/v1/chat/completions", json=chat_body(model=model))
        assert resp.status == 200
    counter = pool.app[EMU].prompt_tokens
    assert counter is not None
    counter.labels(model_name="small-model").inc(OUTSIDE)
    return client, pool


async def _until(check: Any, within_s: float = 5.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = await check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


async def test_usage_reports_the_pools_fixed_cost_idle_time_and_its_own_counters(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    client, _ = await _stack(emulator, proxy)

    async def pool_report() -> dict[str, Any] | None:
        doc = await (await client.get("/v1/admin/usage")).json()
        p = doc["economics"]["pools"][0]
        return doc if p["vllm_input_tokens"] == p["input_tokens"] + OUTSIDE and p["replica_hours_seen"] else None

    doc = await _until(pool_report)
    assert doc is not None, "the pool's counters never reached the ledger"
    econ = doc["economics"]
    pool = econ["pools"][0]
    assert pool["cluster"] == "pool"
    assert pool["requests"] == 3
    assert pool["vllm_output_tokens"] == pool["output_tokens"]
    window = econ["window_s"]
    assert window == pytest.approx(time.time() - windows.day_start(windows.day(time.time()).label), abs=5)
    # Paid for while the health checks saw the replica up: since this proxy started, not since midnight.
    assert pool["replica_hours_seen"]
    replica_s = pool["replica_hours"] * 3600
    assert 0.2 < replica_s < 30
    assert pool["fixed_usd"] == pytest.approx(3.6 * pool["replica_hours"], rel=1e-2)
    busy = pool["input_tokens"] / 100_000 + pool["output_tokens"] / 10_000
    assert pool["utilisation"] == pytest.approx(busy / replica_s, rel=1e-3)
    assert pool["vllm_utilisation"] > pool["utilisation"]  # the outside client's tokens occupy it too
    assert pool["utilisation"] < 1
    assert pool["effective_usd_per_mtok_input"] == pytest.approx(0.01 / pool["utilisation"], rel=1e-3)
    assert pool["idle_usd"] == pytest.approx(pool["fixed_usd"] - pool["marginal_usd"], rel=1e-6)
    routes = {r["route"]: r for r in econ["routes"]}
    assert routes["model:cheap"]["idle_usd"] == pytest.approx(pool["idle_usd"], rel=1e-6)
    assert routes["model:dear"]["idle_usd"] == 0
    # Savings net of the idle pool.
    total = doc["total"]
    assert total["idle_usd"] > 0
    assert total["net_savings_usd"] == pytest.approx(total["savings_usd"] - total["idle_usd"], abs=1e-9)


async def test_capacity_and_the_economics_gauges(
    emulator: EmulatorFactory, proxy: ProxyFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = await _stack(emulator, proxy)
    doc = await (await client.get("/v1/admin/capacity?days=2&target_utilisation=0.6")).json()
    assert doc["object"] == "router.capacity"
    pool = doc["pools"][0]
    assert (pool["cluster"], pool["replicas"], pool["replicas_needed"]) == ("pool", 1, 1)
    assert pool["frontier_fallbacks"] == ["api"]
    assert pool["routes"][0]["route"] == "model:cheap"
    assert "below the break-even" in pool["recommendation"]
    bad = await client.get("/v1/admin/capacity?days=90")
    assert bad.status == 400
    assert (await bad.json())["error"]["param"] == "days"

    base = str(client.make_url("")).rstrip("/")
    assert await asyncio.to_thread(main, ["capacity", "--url", base, "--days", "1"]) == 0
    out = capsys.readouterr().out
    assert "* pool:" in out
    assert "break-even" in out
    assert await asyncio.to_thread(main, ["usage", "--url", base]) == 0
    assert "net saved $" in capsys.readouterr().out

    async def gauges() -> str | None:
        text = await (await client.get("/metrics")).text()
        return text if 'router_pool_utilisation_ratio{cluster="pool",source="vllm"}' in text else None

    text = await _until(gauges)
    assert text is not None, "no economics gauges on /metrics"
    assert 'router_pool_effective_usd_per_mtok{cluster="pool",direction="input"}' in text
    assert 'router_pool_fixed_usd_per_hour{cluster="pool"} 3.6' in text
    assert 'router_route_effective_usd_per_1k_tokens{route="model:dear"}' in text
    assert 'router_pool_tokens_per_hour{cluster="pool",direction="input",source="vllm"}' in text
