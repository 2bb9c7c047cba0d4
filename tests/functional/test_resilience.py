"""Outlier ejection, circuit breakers, retry budgets, adapters, affinity, latency budgets, deadlines and
cooldowns, through the real app against emulators on real ports."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from router.emulator.app import STATE as EMU
from tests.conftest import EmulatorFactory, ProxyFactory, chat_body, url

Client = TestClient[Any, Any]


def pool_policy(endpoints: list[str], extra: str = "", backup: str | None = None, alias_extra: str = "") -> str:
    listed = ", ".join(f'"{e}"' for e in endpoints)
    text = f"""
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: [{listed}]
    model: small-model
    adapters: [x, y]
    timeouts: {{connect_s: 1, first_byte_s: 3, total_s: 5}}
    health_check: {{interval_s: 60, metrics_interval_s: 0}}
{extra}
"""
    if backup is not None:
        text += f"""  backup:
    kind: vllm
    endpoints: ["{backup}"]
    model: small-model
    adapters: [x, y]
"""
    fallbacks = "[backup]" if backup is not None else "[]"
    text += f"""models:
  pinned: {{cluster: pool, fallbacks: {fallbacks}{alias_extra}}}
  x: {{cluster: pool, adapter: x, fallbacks: []}}
  y: {{cluster: pool, adapter: y, fallbacks: []}}
"""
    return text


async def status(client: Client) -> dict[str, Any]:
    doc = await (await client.get("/v1/admin/clusters")).json()
    return {c["name"]: c for c in doc["clusters"]}


def served(*servers: TestServer) -> list[int]:
    return [s.app[EMU].requests_total for s in servers]


async def test_ejection_after_consecutive_failures_then_readmission(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    good = await emulator(model="small-model")
    bad = await emulator(model="small-model", failure_rate=1.0)
    extra = (
        "    outlier_detection: {consecutive_failures: 2, base_ejection_s: 0.4, max_ejection_s: 5,"
        " probation_successes: 1}"
    )
    client = await proxy(pool_policy([url(good), url(bad)], extra))
    for _ in range(12):
        resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
        assert resp.status == 200  # the failures are retried on the good endpoint
    assert served(bad)[0] == 2  # ejected after exactly two failures, never tried again
    ep = (await status(client))["pool"]["endpoints"][1]
    assert (ep["state"], ep["ejections"], ep["last_ejection_reason"]) == ("ejected", 1, "http_500")
    metrics = await (await client.get("/metrics")).text()
    assert f'router_endpoint_ejections_total{{cluster="pool",endpoint="{url(bad)}",reason="http_500"}} 1.0' in metrics
    assert 'router_retries_total{cluster="pool",reason="http_500"} 2.0' in metrics
    assert f'router_endpoint_ejected{{cluster="pool",endpoint="{url(bad)}"}} 1.0' in metrics

    bad.app[EMU].config.failure_rate = 0.0  # it recovers
    await asyncio.sleep(0.45)
    for _ in range(12):
        assert (await client.post("/v1/chat/completions", json=chat_body("pinned"))).status == 200
    assert served(bad)[0] > 2  # re-admitted: it takes traffic again
    assert (await status(client))["pool"]["endpoints"][1]["state"] == "up"


async def test_a_failure_on_probation_ejects_again_at_once_and_for_longer(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    good = await emulator(model="small-model")
    bad = await emulator(model="small-model", failure_rate=1.0)
    extra = "    outlier_detection: {consecutive_failures: 3, base_ejection_s: 0.3, max_ejection_s: 5}"
    client = await proxy(pool_policy([url(bad), url(good)], extra))
    while served(bad)[0] < 3:
        assert (await client.post("/v1/chat/completions", json=chat_body("pinned"))).status == 200
    await asyncio.sleep(0.35)  # ejection over: on probation, still broken
    while served(bad)[0] < 4:
        assert (await client.post("/v1/chat/completions", json=chat_body("pinned"))).status == 200
    ep = (await status(client))["pool"]["endpoints"][0]
    assert ep["state"] == "ejected"
    assert served(bad)[0] == 4  # one failure on probation was enough
    assert ep["ejection_multiplier"] == 2
    assert 0.4 < ep["ejected_for_s"] <= 0.6  # twice the base time


async def test_max_ejection_percent_keeps_part_of_the_pool_in_rotation(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    servers = [await emulator(model="small-model", failure_rate=1.0) for _ in range(2)]
    good = await emulator(model="small-model")
    extra = "    outlier_detection: {consecutive_failures: 1, base_ejection_s: 30, max_ejection_percent: 34}\n"
    extra += "    max_attempts: 3"
    client = await proxy(pool_policy([url(s) for s in servers] + [url(good)], extra))
    for _ in range(10):
        assert (await client.post("/v1/chat/completions", json=chat_body("pinned"))).status == 200
    states = [e["state"] for e in (await status(client))["pool"]["endpoints"]]
    assert states.count("ejected") == 1  # one of three may go; the other failing one stays in rotation


async def test_a_full_cluster_spills_over_and_a_full_chain_gets_a_fast_503(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    slow = await emulator(model="small-model", latency_ms=400)
    backup = await emulator(model="small-model")
    extra = "    circuit_breaker: {max_in_flight: 1, max_pending: 1, pending_timeout_ms: 50}"
    client = await proxy(
        pool_policy([url(slow)], extra, backup=url(backup)) + "  alone: {cluster: pool, fallbacks: []}\n"
    )
    first = asyncio.ensure_future(client.post("/v1/chat/completions", json=chat_body("alone")))
    await asyncio.sleep(0.1)
    waited = asyncio.ensure_future(client.post("/v1/chat/completions", json=chat_body("alone")))
    await asyncio.sleep(0.01)
    no_room = await client.post("/v1/chat/completions", json=chat_body("alone"))  # pending is full too
    assert no_room.status == 503
    assert no_room.headers["Retry-After"] == "1"
    body = await no_room.json()
    assert body["error"]["code"] == "no_upstream_available"
    assert "pending full" in body["error"]["message"]
    timed_out = await waited  # waited 50 ms for a slot, then gave up
    assert timed_out.status == 503
    assert "pending timeout" in (await timed_out.json())["error"]["message"]
    spilled = await client.post("/v1/chat/completions", json=chat_body("pinned"))  # has a fallback: moves on
    assert spilled.status == 200
    assert spilled.headers["x-router-cluster"] == "backup"
    assert (await first).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'router_breaker_rejections_total{cluster="pool",limit="pending"} 3.0' in metrics
    assert 'router_spillovers_total{cluster="pool",reason="pending_timeout"}' in metrics


async def test_a_pending_request_gets_the_next_free_slot(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    slow = await emulator(model="small-model", latency_ms=100)
    extra = "    circuit_breaker: {max_in_flight: 1, max_pending: 8, pending_timeout_ms: 2000}"
    client = await proxy(pool_policy([url(slow)], extra))
    replies = await asyncio.gather(*(client.post("/v1/chat/completions", json=chat_body("pinned")) for _ in range(4)))
    assert [r.status for r in replies] == [200] * 4  # queued one behind the other, none refused
    queue = (await status(client))["pool"]["estimates"]["queue"]
    assert queue["samples"] == 3
    assert queue["p95_ms"] is None or queue["p95_ms"] > 0


async def test_the_retry_budget_bounds_retries_within_a_cluster(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    bad = [await emulator(model="small-model", failure_rate=1.0) for _ in range(2)]
    backup = await emulator(model="small-model")
    extra = "    circuit_breaker: {max_retries: 0, min_retry_concurrency: 0}"
    client = await proxy(pool_policy([url(b) for b in bad], extra, backup=url(backup)))
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
    assert resp.status == 200
    assert resp.headers["x-router-cluster"] == "backup"  # failover to a fallback is not a retry
    assert sum(served(*bad)) == 1  # the second endpoint of the pool was not tried
    metrics = await (await client.get("/metrics")).text()
    assert 'router_breaker_rejections_total{cluster="pool",limit="retries"} 1.0' in metrics
    assert 'router_spillovers_total{cluster="pool",reason="retry_budget"} 1.0' in metrics
    assert 'router_failovers_total{cluster="backup",from_cluster="pool"} 1.0' in metrics


async def test_adapters_go_only_to_endpoints_that_serve_them(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    only_x = await emulator(model="small-model", lora=["x"])
    both = await emulator(model="small-model", lora=["x", "y"])
    text = pool_policy([url(both)]).replace(
        f'endpoints: ["{url(both)}"]', f'endpoints: [{{url: "{url(only_x)}", adapters: [x]}}, "{url(both)}"]'
    )
    client = await proxy(text)
    for _ in range(8):
        resp = await client.post("/v1/chat/completions", json=chat_body("y"))
        assert resp.headers["x-router-upstream-model"] == "y"
    assert served(only_x, both) == [0, 8]
    for _ in range(20):
        await client.post("/v1/chat/completions", json=chat_body("x"))
    assert served(only_x)[0] > 0  # x is balanced over both
    assert both.app[EMU].last_request["model"] == "y" or served(both)[0] > 8


async def test_session_affinity_sticks_to_one_endpoint(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    servers = [await emulator(model="small-model") for _ in range(3)]
    extra = "    load_balancing: {affinity: session}"
    client = await proxy(pool_policy([url(s) for s in servers], extra))
    for session in ("alpha", "beta"):
        before = served(*servers)
        for _ in range(6):
            resp = await client.post(
                "/v1/chat/completions", json=chat_body("pinned"), headers={"x-session-id": session}
            )
            assert resp.status == 200
        delta = [a - b for a, b in zip(served(*servers), before, strict=True)]
        assert sorted(delta) == [0, 0, 6]  # every request of the session on one replica
    before = served(*servers)
    for _ in range(30):
        await client.post("/v1/chat/completions", json=chat_body("pinned"))
    assert all(a > b for a, b in zip(served(*servers), before, strict=True))  # without a session: spread


async def test_a_latency_budget_skips_a_target_predicted_to_miss_it(
    emulator: EmulatorFactory, proxy: ProxyFactory, caplog: Any
) -> None:
    slow = await emulator(model="small-model", latency_ms=120)
    fast = await emulator(model="small-model")
    client = await proxy(pool_policy([url(slow)], backup=url(fast), alias_extra=", latency: {max_ttft_ms: 60}"))
    clusters = [
        (await client.post("/v1/chat/completions", json=chat_body("pinned"))).headers["x-router-cluster"]
        for _ in range(12)
    ]
    assert clusters[:10] == ["pool"] * 10  # no evidence yet (fewer than 10 samples): the route's own target
    assert clusters[10:] == ["backup", "backup"]  # now its p95 says it would miss 60 ms
    assert served(slow)[0] == 10
    metrics = await (await client.get("/metrics")).text()
    assert 'router_spillovers_total{cluster="pool",reason="over_budget"} 2.0' in metrics


async def test_every_target_over_budget_is_still_tried(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    slow = await emulator(model="small-model", latency_ms=80)
    client = await proxy(pool_policy([url(slow)], alias_extra=", latency: {max_latency_ms: 10}"))
    for _ in range(12):
        assert (await client.post("/v1/chat/completions", json=chat_body("pinned"))).status == 200


async def test_the_callers_deadline_cuts_the_upstream_call(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    slow = await emulator(model="small-model", latency_ms=2000)
    client = await proxy(pool_policy([url(slow)]))
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned"), headers={"x-router-timeout-ms": "150"})
    assert resp.status == 504
    assert (await resp.json())["error"]["code"] == "upstream_timeout"
    for _ in range(40):
        if slow.app[EMU].running == 0:
            break
        await asyncio.sleep(0.05)
    assert slow.app[EMU].running == 0  # the upstream request was abandoned, not left running
    bad = await client.post("/v1/chat/completions", json=chat_body("pinned"), headers={"x-router-timeout-ms": "soon"})
    assert bad.status == 400
    assert (await bad.json())["error"]["param"] == "x-router-timeout-ms"


FRONTIER = """
version: 1
clusters:
  api:
    kind: frontier
    model: openai/frontier-model
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
    api_key_env: TEST_FRONTIER_KEY
    api_base: {api}
    cooldown: {{consecutive_failures: 3, base_s: 5, max_s: 60}}
    fallbacks: [backup]
  backup: {{kind: vllm, endpoints: ["{backup}"], model: small-model}}
models:
  m: {{cluster: api}}
"""


async def test_a_provider_429_cools_the_frontier_cluster_down_for_its_retry_after(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    api = await emulator(model="frontier-model", failure_rate=1.0, failure_status=429, retry_after_s=7)
    backup = await emulator(model="small-model")
    client = await proxy(FRONTIER.format(api=url(api), backup=url(backup)))
    first = await client.post("/v1/chat/completions", json=chat_body("m"))
    assert first.status == 200
    assert first.headers["x-router-cluster"] == "backup"
    calls = served(api)[0]
    for _ in range(3):
        again = await client.post("/v1/chat/completions", json=chat_body("m"))
        assert again.headers["x-router-cluster"] == "backup"
    assert served(api)[0] == calls  # cooling down: not called again
    ep = (await status(client))["api"]["endpoints"][0]
    assert ep["state"] == "ejected"
    assert 6 < ep["ejected_for_s"] <= 7  # the provider's Retry-After, not the 5 s default


async def test_a_frontier_5xx_cools_down_after_consecutive_failures(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    api = await emulator(model="frontier-model", failure_rate=1.0, failure_status=503)
    backup = await emulator(model="small-model")
    client = await proxy(FRONTIER.format(api=url(api), backup=url(backup)))
    for _ in range(5):
        assert (await client.post("/v1/chat/completions", json=chat_body("m"))).status == 200
    ep = (await status(client))["api"]["endpoints"][0]
    assert ep["state"] == "ejected"
    assert ep["last_ejection_reason"] == "http_503"
    assert 4 < ep["ejected_for_s"] <= 5


async def test_each_attempt_is_a_span_and_skipped_targets_are_events(
    emulator: EmulatorFactory, proxy: ProxyFactory, spans: Any
) -> None:
    bad = await emulator(model="small-model", failure_rate=1.0)
    backup = await emulator(model="small-model")
    extra = "    outlier_detection: {consecutive_failures: 1, max_ejection_percent: 100}"
    client = await proxy(pool_policy([url(bad)], extra, backup=url(backup)))
    assert (await client.post("/v1/chat/completions", json=chat_body("pinned"))).status == 200
    attempts = [s for s in spans[1].get_finished_spans() if s.name == "chat small-model"]
    first, second = (dict(s.attributes or {}) for s in attempts)
    assert (first["router.endpoint"], first["router.outcome"], first["error.type"]) == (url(bad), "error", "http_500")
    assert first["router.next_reason"] == "http_500"
    assert first["router.retry"] is False
    assert attempts[0].events[0].name == "router.endpoint_ejected"
    assert (second["router.cluster"], second["router.retry"], second["router.outcome"]) == ("backup", False, "success")
    assert second["router.attempt"] == 2

    spans[1].clear()
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
    assert resp.headers["x-router-cluster"] == "backup"
    server = next(s for s in spans[1].get_finished_spans() if s.name == "POST /v1/chat/completions")
    skipped = [e for e in server.events if e.name == "router.target_skipped"]
    assert len(skipped) == 1
    attrs = dict(skipped[0].attributes or {})
    assert (attrs["router.cluster"], attrs["router.skip_reason"]) == ("pool", "no_endpoint")
    assert "1 ejected" in str(attrs["detail"])


async def test_a_slow_endpoint_shows_in_status_and_metrics_from_its_first_answers(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    from router.cli.status_table import render

    fast = await emulator(model="small-model")
    slow = await emulator(model="small-model", latency_ms=900)
    lb = "    load_balancing: {policy: round_robin}\n"
    client = await proxy(pool_policy([url(fast), url(slow)], extra=lb))
    await asyncio.gather(*(client.post("/v1/chat/completions", json=chat_body(model="pinned")) for _ in range(6)))
    doc = await (await client.get("/v1/admin/clusters")).json()
    endpoints = {e["url"]: e for e in doc["clusters"][0]["endpoints"]}
    slow_est, fast_est = endpoints[url(slow)]["estimates"]["ttft"], endpoints[url(fast)]["estimates"]["ttft"]
    assert slow_est["samples"] == 3  # too few for a p95: the EWMA tells already
    assert slow_est["p95_ms"] is None
    assert slow_est["ewma_ms"] >= 900
    assert fast_est["ewma_ms"] < 300
    text = render(doc)
    assert f"{url(slow)}: in flight 0, attempts 3, failures 0, ejections 0, ttft ~9" in text
    metrics = await (await client.get("/metrics")).text()
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith("router_endpoint_latency_estimate_seconds{")
        and f'endpoint="{url(slow)}"' in m
        and 'measure="ttft"' in m
        and 'stat="ewma"' in m
    )
    assert float(line.rsplit(" ", 1)[1]) >= 0.9
