"""Budgets that hold across proxy replicas: several `router serve` processes share one Redis (the
machine's, under a unique key prefix that is removed afterwards; or a private redis-server that the test
stops and starts)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson
import pytest

from router.tenancy.keys import hash_key
from tests.integration.conftest import Proc, Spawn, free_port, wait_http
from tests.integration.metered import POOL_POLICY
from tests.redis_servers import SHARED_URL, PrivateRedis

pytestmark = pytest.mark.integration

# $1 a second of GPU over 1000 tokens a second: every token costs $0.001. A request of about 7 prompt and
# 16 completion tokens costs about $0.023 and reserves $0.033 (a high prompt estimate plus max_tokens).
POLICY = POOL_POLICY + "{budgets}\n"
KEY, OTHER, ADMIN = "sk-router-acme", "sk-router-strict", "sk-router-admin"
KEYS = f"acme:{hash_key(KEY)},strict:{hash_key(OTHER)},ops:{hash_key(ADMIN)}:admin"


def start(spawn: Spawn, tmp: Path, budgets: str, redis_url: str, prefix: str, replicas: int, **extra: str) -> list[str]:
    pool = free_port()
    emu = spawn("emulate", "--port", str(pool), "--model", "small-model", "--latency-ms", "30")
    wait_http(f"http://127.0.0.1:{pool}/health", emu)
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY.format(pool=pool, budgets=budgets))
    urls = []
    procs: list[Proc] = []
    for _ in range(replicas):
        port = free_port()
        env = {"ROUTER_REDIS_URL": redis_url, "ROUTER_STATE_PREFIX": prefix, "ROUTER_API_KEYS": KEYS,
               "ROUTER_ACCESS_LOG": "false", "ROUTER_RELOAD_INTERVAL_S": "0", **extra}  # fmt: skip
        procs.append(spawn("serve", "--policies", str(policy), "--port", str(port), env=env))
        urls.append(f"http://127.0.0.1:{port}")
    for url, proc in zip(urls, procs, strict=True):
        wait_http(f"{url}/readyz", proc)
    return urls


async def fire(
    session: aiohttp.ClientSession, url: str, key: str, stream: bool = False
) -> tuple[int, Decimal, str | None]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16, "stream": stream}
    async with session.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        raw = await r.read()
        cost = r.headers.get("x-router-cost-usd", "0")
        if stream and r.status == 200:  # a stream's cost comes in an SSE comment before [DONE]
            comment = next(e for e in raw.split(b"\n\n") if e.startswith(b": router-cost "))
            cost = str(orjson.loads(comment[len(b": router-cost ") :])["cost_usd"])
        return r.status, Decimal(cost), r.headers.get("Retry-After")


async def usage(session: aiohttp.ClientSession, url: str) -> dict[str, object]:
    await asyncio.sleep(0.6)  # every replica flushes its ledger every 200 ms
    async with session.get(f"{url}/v1/admin/usage?group_by=tenant", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
        assert r.status == 200
        doc: dict[str, object] = await r.json()
        return doc


async def test_a_daily_budget_holds_across_three_replicas(spawn: Spawn, tmp_path: Path, prefix: str) -> None:
    cap = Decimal("1.15")  # about 50 requests
    urls = start(spawn, tmp_path, f"  - {{name: acme-daily, tenant: acme, usd_per_day: {cap}}}", SHARED_URL, prefix, 3)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        results = await asyncio.gather(*(fire(s, urls[i % 3], KEY) for i in range(200)))
        statuses = [r[0] for r in results]
        assert set(statuses) <= {200, 429}  # answered or refused, nothing else
        assert all(r[2] is not None for r in results if r[0] == 429)  # every refusal says when to come back
        spent = sum(r[1] for r in results)
        answered = statuses.count(200)
        report = await usage(s, urls[0])
    row = next(r for r in report["rows"] if r["tenant"] == "acme")  # type: ignore[attr-defined]
    overshoot = spent - cap
    print(f"\n200 requests over 3 replicas: {answered} answered, {statuses.count(429)} refused, "
          f"spent ${spent} of ${cap} (overshoot ${overshoot}), ledger ${row['cost_usd']}")  # fmt: skip
    assert spent <= cap  # reservations are checked and taken atomically: never past the cap
    # And no room was lost: even if every request arrives before any settles, cap / reservation of them
    # fit ($1.15 / $0.033: 34); settled answers give back a third of theirs for later arrivals.
    assert answered >= 34
    assert row["requests"] == answered
    assert abs(Decimal(str(row["cost_usd"])) - spent) < Decimal("1e-6")  # the ledger is the headers' sum


async def test_a_rate_limit_holds_across_replicas(spawn: Spawn, tmp_path: Path, prefix: str) -> None:
    limit = 30
    urls = start(
        spawn, tmp_path, f"  - {{name: rpm, tenant: '*', requests_per_minute: {limit}}}", SHARED_URL, prefix, 3
    )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        before = time.time()
        results = await asyncio.gather(*(fire(s, urls[i % 3], KEY) for i in range(120)))
        after = time.time()
    windows = int(after // 60) - int(before // 60) + 1  # UTC minutes the burst touched
    answered = [r[0] for r in results].count(200)
    assert answered <= limit * windows
    assert answered >= limit  # and the limit is reachable
    assert all(0 < int(r[2] or 0) <= 60 for r in results if r[0] == 429)


async def test_redis_stopped_and_restarted_mid_run(spawn: Spawn, tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    budgets = (
        "  - {name: acme-open, tenant: acme, requests_per_minute: 100000, on_state_unavailable: open}\n"
        "  - {name: strict-closed, tenant: strict, requests_per_minute: 100000, on_state_unavailable: closed}"
    )
    urls = start(spawn, tmp_path, budgets, server.url, "t:", 2)
    spent = Decimal(0)
    phases: dict[str, list[int]] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:

            async def burst(name: str, n: int = 40) -> None:
                nonlocal spent
                results = await asyncio.gather(
                    *(fire(s, urls[i % 2], KEY if i % 2 else OTHER, stream=i % 4 == 1) for i in range(n))
                )
                phases[name] = [r[0] for r in results]
                spent += sum(r[1] for r in results)

            await burst("before")
            server.stop()
            await burst("redis down")
            for url in urls:  # nothing crashed: health and metrics answer
                async with s.get(f"{url}/healthz") as h:
                    assert h.status == 200
                async with s.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}) as m:
                    assert "router_state_store_up 0.0" in await m.text()
            await burst("redis down, later")
            server.start()  # a new, empty Redis
            await asyncio.sleep(1.5)  # the replicas reconnect and add their shares back
            await burst("after")
            report = await usage(s, urls[1])
    finally:
        server.stop()

    down = phases["redis down"] + phases["redis down, later"]
    assert set(phases["before"]) == set(phases["after"]) == {200}
    assert {c for i, c in enumerate(down) if i % 2} == {200}  # acme's budget fails open: served
    assert {c for i, c in enumerate(down) if not i % 2} == {503}  # strict's fails closed: refused
    rows = {r["tenant"]: r for r in report["rows"]}  # type: ignore[attr-defined]
    served = sum(c == 200 for p in phases.values() for c in p)
    # Counted while Redis was away, and everything before it (lost in the restart), added back: the
    # ledger equals what the answers said they cost.
    assert sum(r["requests"] for r in rows.values()) == served
    assert abs(Decimal(str(report["total"]["cost_usd"])) - spent) < Decimal("1e-6")  # type: ignore[index]


def test_router_status_reads_every_replica(spawn: Spawn, tmp_path: Path, prefix: str) -> None:
    import socket
    import subprocess
    import sys

    urls = start(spawn, tmp_path, "  []", SHARED_URL, prefix, 2)
    args = [sys.executable, "-m", "router", "status", "--key", ADMIN, "--url", urls[0], "--url", urls[1]]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    for url in urls:
        assert f"== {url} (policy " in out.stdout
    assert out.stdout.count("  up        http://127.0.0.1:") == 2  # the pool's one endpoint, seen by each
    assert out.stdout.rstrip().endswith("every replica sees every endpoint in the same state")
    # Without knowing the replicas' addresses: each shares its view through Redis, one answers for all.
    every = [sys.executable, "-m", "router", "status", "--key", ADMIN, "--url", urls[0], "--all"]
    out = subprocess.run(every, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    for url in urls:
        assert f"== {socket.gethostname()}:{url.rsplit(':', 1)[1]} (policy " in out.stdout
    assert out.stdout.rstrip().endswith("every replica sees every endpoint in the same state")
    down = [*args[:-2], "--url", f"{urls[1]},http://127.0.0.1:9"]  # one replica unreachable: exit 1
    out = subprocess.run(down, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 1
    assert "http://127.0.0.1:9/v1/admin/clusters" in out.stderr


async def test_a_decision_is_found_from_any_replica(spawn: Spawn, tmp_path: Path, prefix: str) -> None:
    urls = start(spawn, tmp_path, "  []", SHARED_URL, prefix, 2, ROUTER_DECISION_LOG="true")
    async with aiohttp.ClientSession() as session:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
        headers = {"Authorization": f"Bearer {KEY}", "x-request-id": "shared-1"}
        async with session.post(f"{urls[0]}/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200
        admin = {"Authorization": f"Bearer {ADMIN}"}
        doc: dict[str, object] = {}
        for _ in range(50):  # written off the response's path
            async with session.get(f"{urls[1]}/v1/admin/decisions/shared-1", headers=admin) as r:
                if r.status == 200:
                    doc = await r.json()
                    break
            await asyncio.sleep(0.05)
        assert doc["request_id"] == "shared-1"
        assert doc["tenant"] == "acme"
        assert doc["status"] == 200


async def test_the_decision_log_becomes_traffic_for_a_policy_diff(spawn: Spawn, tmp_path: Path, prefix: str) -> None:
    """Decisions from two replicas land in one shared list; `router decisions export` writes them out and
    `router policy diff` replays them (the same policy on both sides: nothing may change)."""
    import functools
    import subprocess
    import sys

    urls = start(spawn, tmp_path, "  []", SHARED_URL, prefix, 2, ROUTER_DECISION_LOG="true")
    async with aiohttp.ClientSession() as session:
        for i in range(6):
            body = {"model": "chat", "messages": [{"role": "user", "content": f"hello {i}"}]}
            headers = {"Authorization": f"Bearer {KEY}", "x-request-id": f"replay-{i}"}
            async with session.post(f"{urls[i % 2]}/v1/chat/completions", json=body, headers=headers) as r:
                assert r.status == 200
        await asyncio.sleep(0.3)  # records are written off the response's path
    traffic = tmp_path / "traffic.jsonl"
    export = [sys.executable, "-m", "router", "decisions", "export", "--url", urls[1], "--key", ADMIN]
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=60, check=False)
    out = await asyncio.to_thread(run, [*export, "--limit", "50", "--out", str(traffic)])
    assert out.returncode == 0, out.stderr
    rows = [orjson.loads(line) for line in traffic.read_text().splitlines()]
    assert [r["request_id"] for r in rows] == [f"replay-{i}" for i in range(6)]  # both replicas', oldest first
    assert all(r["tenant"] == "acme" and "messages" not in r for r in rows)  # no content capture: no prompts
    policy = str(tmp_path / "policy.yaml")
    diff = [sys.executable, "-m", "router", "policy", "diff", policy, policy, "--traffic", str(traffic)]
    out = await asyncio.to_thread(run, [*diff, "--max-changed", "0"])
    assert out.returncode == 0, out.stderr
    assert "traffic: 6 requests (0 classified from their text, 6 routed on their recorded classification)" in out.stdout
    assert "changed decisions: 0 of 6 (0.0%)" in out.stdout
