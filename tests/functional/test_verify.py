"""`router usage --verify` and `GET /v1/admin/usage/verify` against a running proxy: exact after real
traffic (streamed and not, in memory and in the machine's Redis), and a tampered counter named with its
cause and a failing exit status (issue #15)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
import redis.asyncio as aioredis

from router.http.keys import STATE
from tests.conftest import EmulatorFactory, ProxyFactory, chat_body
from tests.functional.test_budgets import ADMIN, KEY_A, KEY_B, auth, stack
from tests.redis_servers import SHARED_URL

BUDGETS = """budgets:
  - {name: daily, tenant: '*', usd_per_day: 50}
  - {name: rate, tenant: '*', requests_per_minute: 1000, tokens_per_minute: 1000000}
"""


async def _traffic(client: Any) -> None:
    for key, model, stream in ((KEY_A, "cheap", False), (KEY_A, "dear", True), (KEY_B, "cheap", True)):
        resp = await client.post("/v1/chat/completions", json=chat_body(model, stream=stream), headers=auth(key))
        assert resp.status == 200
        await resp.read()


async def _verify(client: Any) -> dict[str, Any]:
    for _ in range(50):  # settlements are off the answer's path
        doc: dict[str, Any] = await (await client.get("/v1/admin/usage/verify", headers=auth(ADMIN))).json()
        if doc["exact"] and doc["open_leases"] == 0:
            return doc
        await asyncio.sleep(0.02)
    return doc


async def _cli(client: Any, *args: str) -> tuple[int, str]:
    base = f"http://{client.server.host}:{client.server.port}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "router", "usage", "--verify", "--url", base, "--key", ADMIN, *args,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


@pytest.mark.parametrize("where", ["memory", "redis"])
async def test_verify_is_exact_after_traffic_and_names_a_tampered_counter(
    emulator: EmulatorFactory, proxy: ProxyFactory, prefix: str, where: str
) -> None:
    settings: dict[str, Any] = {"redis_url": SHARED_URL, "state_prefix": prefix} if where == "redis" else {}
    client, _, _ = await stack(emulator, proxy, BUDGETS, **settings)
    assert (await client.get("/v1/admin/usage/verify", headers=auth(KEY_A))).status == 403  # operators only
    await _traffic(client)
    doc = await _verify(client)
    assert doc["exact"], doc
    by = {(f["budget"], f["scope"], f["limit"]): f for f in doc["findings"]}
    daily = by[("daily", "t=a", "usd_per_day")]
    assert daily["ledger"] == daily["settled"] == daily["value"] > 0  # the ledger agrees, to the nano-dollar
    assert by[("rate", "t=a", "requests_per_minute")]["value"] == 2
    assert by[("rate", "t=b", "requests_per_minute")]["value"] == 1
    code, out = await _cli(client)
    assert code == 0
    assert "every counter is exact" in out

    if where == "memory":  # a counter moved behind the scripts' back: a settlement applied twice, say
        store = client.server.app[STATE].store
        value, expire = store.counters[daily["key"]]
        store.counters[daily["key"]] = (value - 1000, expire)
    else:
        r = aioredis.Redis.from_url(SHARED_URL)
        await r.decrby(daily["key"], 1000)
        await r.aclose()
    code, out = await _cli(client)
    assert code == 1
    assert "DIFFERS" in out
    assert "below its settled use and open leases" in out
    code, raw = await _cli(client, "--json")
    assert '"exact": false' in raw
