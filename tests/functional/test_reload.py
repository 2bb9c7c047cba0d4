"""Hot reload is all or nothing: a bad edit under traffic leaves the old policy serving."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from router.admin import reload
from router.http.keys import STATE
from tests.conftest import BASIC_POLICY, chat_body, url


async def test_bad_edit_under_traffic_keeps_the_old_policy(emulator: Any, proxy: Any, tmp_path: Path) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    backup = await emulator(model="backup-model")
    good = BASIC_POLICY.format(pool=url(pool), backup=url(backup), frontier=url(backup), pool_limit=64)
    client = await proxy(good)
    first = (await (await client.get("/readyz")).json())["policy"]
    assert len(first) == 12
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            resp = await client.post("/v1/chat/completions", json=chat_body())
            statuses.append(resp.status)
            assert resp.headers["x-router-cluster"] == "pool"
            assert resp.headers["x-router-policy"] == first  # the old policy, by its digest
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
    second = (await (await client.get("/readyz")).json())["policy"]
    assert second != first
    assert resp.headers["x-router-policy"] == second
    assert f'router_policy_info{{digest="{second}"}} 1.0' in metrics
    assert first not in metrics  # one digest at a time


async def _wait_for(client: Any, cluster: str) -> Any:
    resp = None
    for _ in range(50):
        await asyncio.sleep(0.1)
        resp = await client.post("/v1/chat/completions", json=chat_body())
        if resp.headers["x-router-cluster"] == cluster:
            break
    return resp


async def test_any_failure_of_a_reload_keeps_the_watcher_alive(emulator: Any, proxy: Any, tmp_path: Path) -> None:
    # Issue #12: `x: &a [*a]` raised RecursionError, which killed the watcher silently; a billion laughs
    # cost seconds and megabytes; a multi-megabyte file stalled the event loop.
    pool = await emulator(model="small-model", lora=["extract-lora"])
    backup = await emulator(model="backup-model")
    good = BASIC_POLICY.format(pool=url(pool), backup=url(backup), frontier=url(backup), pool_limit=64)
    client = await proxy(good)
    policy_file = tmp_path / "policy.yaml"
    bad_edits = [
        good + "\nx: &a [*a]\n",
        good + "\nbomb: &b [" + ",".join(["lol"] * 9) + "]\nbomb2: [" + ",".join(["*b"] * 9) + "]\n",
        good + "\n# " + "x" * (3 * 1024 * 1024) + "\n",
    ]
    for text in bad_edits:
        policy_file.write_text(text)
        for _ in range(40):
            await asyncio.sleep(0.1)
            metrics = await (await client.get("/metrics")).text()
            if "router_policy_last_reload_success 0.0" in metrics:
                break
        assert "router_policy_last_reload_success 0.0" in metrics, text[-80:]
        resp = await client.post("/v1/chat/completions", json=chat_body())
        assert resp.headers["x-router-cluster"] == "pool"  # the old policy still serves
        policy_file.write_text(good)  # back to good, so the next bad edit is a change
        await asyncio.sleep(0.3)
    # A good edit after all that still takes effect.
    policy_file.write_text(good.replace("    cluster: pool\n", "    cluster: backup\n"))
    resp = await _wait_for(client, "backup")
    assert resp.headers["x-router-cluster"] == "backup"


async def test_an_unexpected_exception_in_a_reload_is_a_rejected_edit(
    emulator: Any, proxy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    good = BASIC_POLICY.format(pool=url(pool), backup=url(pool), frontier=url(pool), pool_limit=64)
    client = await proxy(good)
    state = client.app[STATE]

    def boom(policy: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(reload, "price_book", boom)
    assert await reload.reload_policy(state) is False
    assert state.last_reload_error == "RecursionError: maximum recursion depth exceeded"
    metrics = await (await client.get("/metrics")).text()
    assert "router_policy_last_reload_success 0.0" in metrics
    monkeypatch.undo()
    assert await reload.reload_policy(state) is True
    assert state.last_reload_error is None


async def test_a_reload_that_drops_a_cluster_mid_stream_still_costs_the_stream(
    emulator: Any, proxy: Any, tmp_path: Path
) -> None:
    # Issue #13: accounting read the *current* policy's prices when a stream ended, so a reload that
    # dropped the stream's cluster meanwhile raised KeyError (and would have cost it at zero).
    pool = await emulator(model="small-model", lora=["extract-lora"], tokens_per_second=40, completion_tokens=20)
    backup = await emulator(model="backup-model")
    good = BASIC_POLICY.format(pool=url(pool), backup=url(backup), frontier=url(backup), pool_limit=64)
    client = await proxy(good)
    state = client.app[STATE]
    resp = await client.post("/v1/chat/completions", json=chat_body("pinned", stream=True))
    assert resp.status == 200
    first = await resp.content.readline()
    assert first.startswith(b"data: ")
    # The pool is renamed: the running stream's cluster is no longer in the policy.
    (tmp_path / "policy.yaml").write_text(
        good.replace("  pool:\n", "  pool2:\n").replace("cluster: pool", "cluster: pool2")
    )
    assert await reload.reload_policy(state) is True
    assert state.serving.upstreams.get("pool") is None
    rest = await resp.read()
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert b": router-cost " in rest  # costed with the prices the request started with
    assert b'"cost_usd":0.0' not in rest
    report = await (await client.get("/v1/admin/usage?group_by=cluster")).json()
    assert [(r["cluster"], r["requests"]) for r in report["rows"]] == [("pool", 1)]
    assert report["total"]["cost_usd"] > 0  # the ledger has its cost too, not zero
