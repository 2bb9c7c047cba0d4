"""Hot reload is all or nothing: a bad edit under traffic leaves the old policy serving."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import BASIC_POLICY, chat_body, url


async def test_bad_edit_under_traffic_keeps_the_old_policy(emulator: Any, proxy: Any, tmp_path: Path) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    backup = await emulator(model="backup-model")
    good = BASIC_POLICY.format(pool=url(pool), backup=url(backup), frontier=url(backup), pool_limit=64)
    client = await proxy(good)
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            resp = await client.post("/v1/chat/completions", json=chat_body())
            statuses.append(resp.status)
            assert resp.headers["x-router-cluster"] == "pool"
            await resp.read()

    workers = [asyncio.create_task(traffic()) for _ in range(4)]
    await asyncio.sleep(0.3)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(good.replace("cluster: pool\n", "cluster: no-such-cluster\n") + "\n  - bad: [\n")
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*workers)
    assert len(statuses) > 20
    assert set(statuses) == {200}
    metrics = await (await client.get("/metrics")).text()
    assert "router_policy_last_reload_success 0.0" in metrics
    assert 'router_policy_reloads_total{result="failure"}' in metrics
    ready = await (await client.get("/readyz")).json()
    assert "policy.yaml" in ready["last_reload_error"]

    # A good edit is picked up: the general route now sends traffic to the backup cluster.
    policy_file.write_text(good.replace("    cluster: pool\n", "    cluster: backup\n"))
    for _ in range(40):
        await asyncio.sleep(0.1)
        resp = await client.post("/v1/chat/completions", json=chat_body())
        if resp.headers["x-router-cluster"] == "backup":
            break
    assert resp.headers["x-router-cluster"] == "backup"
    metrics = await (await client.get("/metrics")).text()
    assert "router_policy_last_reload_success 1.0" in metrics
