"""Failures before the first byte move to the next target; after it, streams end cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from router.emulator.app import STATE as EMU
from tests.conftest import BASIC_POLICY, chat_body, single_pool, url


async def test_pool_failure_falls_back_to_next_cluster(emulator: Any, proxy: Any) -> None:
    bad = await emulator(model="small-model", lora=["extract-lora"], failure_rate=1.0)
    backup = await emulator(model="backup-model")
    client = await proxy(BASIC_POLICY.format(pool=url(bad), backup=url(backup), frontier=url(backup), pool_limit=8))
    for stream in (False, True):
        resp = await client.post("/v1/chat/completions", json=chat_body(stream=stream))
        assert resp.status == 200
        assert resp.headers["x-router-cluster"] == "backup"
        assert resp.headers["x-router-upstream-model"] == "backup-model"
        await resp.read()


async def test_dead_endpoint_is_skipped_within_the_cluster(emulator: Any, proxy: Any) -> None:
    good = await emulator(model="small-model", lora=["extract-lora"])
    pool = f'"http://127.0.0.1:9/v1", "{url(good)}"'
    client = await proxy(BASIC_POLICY.format(pool=pool, backup=url(good), frontier=url(good), pool_limit=8))
    for _ in range(4):
        resp = await client.post("/v1/chat/completions", json=chat_body("pinned"))
        assert resp.status == 200
        assert resp.headers["x-router-cluster"] == "pool"


async def test_stream_broken_midway_ends_with_error_event_and_done(emulator: Any, proxy: Any) -> None:
    _, client = await single_pool(emulator, proxy, break_stream_rate=1.0)
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned", stream=True))
    assert resp.status == 200
    raw = await resp.read()
    events = [e[6:] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    error = orjson.loads(events[-2])
    assert error["error"]["type"] == "server_error"
    assert "broke" in error["error"]["message"]
    assert len(events) > 3  # real content came first


async def test_client_disconnect_cancels_the_upstream_request(emulator: Any, proxy: Any) -> None:
    slow, client = await single_pool(emulator, proxy, tokens_per_second=20, completion_tokens=200)
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned", stream=True))
    assert resp.status == 200
    await resp.content.readany()
    assert slow.app[EMU].running == 1
    resp.close()
    for _ in range(50):
        if slow.app[EMU].running == 0:
            break
        await asyncio.sleep(0.05)
    assert slow.app[EMU].running == 0
    metrics = await (await client.get("/metrics")).text()
    assert "router_in_flight_requests 0.0" in metrics
    assert 'router_cluster_in_flight_requests{cluster="pool"} 0.0' in metrics
    assert 'router_requests_total{cluster="pool",route="model:pinned",status="499"} 1.0' in metrics
