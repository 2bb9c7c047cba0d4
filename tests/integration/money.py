"""Money under Redis faults (issue #15): three `router serve` replicas share a private redis-server (through
a TCP proxy that can slow the network) under closed-loop load, with daily-money and per-minute budgets,
while the server is killed (with an append-only file), restarted empty, frozen shorter and longer than the
client's timeout, or slowed on the wire. After each fault, once the replicas have settled: the ledger
counts exactly the answers the clients got, and every counter equals its settled use plus its open leases
(``router usage --verify``); for fail-closed budgets, no answer was served without a reservation in Redis.

    .venv/bin/python -m tests.integration.money [--runs 10] [--mode open|closed]

tests/integration/test_money.py runs each mode once and asserts the same.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from router.tenancy.keys import hash_key
from tests.integration.conftest import Proc, free_port, spawner, wait_http
from tests.integration.metered import POOL_POLICY
from tests.redis_servers import PrivateRedis
from tests.tcp_delay import DelayProxy

CLIENTS = 24
LOAD_S = 3.0
FAULT_AT_S = 0.7
TIMEOUT_MS = 300
KEY, ADMIN = "sk-router-acme", "sk-router-admin"
KEYS = f"acme:{hash_key(KEY)},ops:{hash_key(ADMIN)}:admin"
POLICY = (
    POOL_POLICY
    + """  - {{name: daily, tenant: '*', usd_per_day: 100000, on_state_unavailable: {mode}}}
  - {{name: rate, tenant: '*', requests_per_minute: 1000000, tokens_per_minute: 100000000,
     on_state_unavailable: {mode}}}
"""
)
FAULTS = ("killed", "restarted empty", "frozen < timeout", "frozen > timeout", "slow network")


@dataclass
class Result:
    fault: str
    mode: str
    sent: int
    answered: int
    refused: dict[int, int]
    answered_total: int  # since the stack started (the ledger's requests count them all)
    ledger: int
    counters: int
    differing: int
    open_leases: int
    local: int  # reservations granted from memory (fail-open only)
    applied: int  # leases closed in Redis so far (fail-closed: at least one per answer)
    settle_s: float

    @property
    def exact(self) -> bool:
        # Fail-closed: nothing granted from memory, and (where Redis kept its bits) a closed lease for each
        # answer. A Redis that restarted empty forgot the bits of the leases closed before it.
        kept = self.fault != "restarted empty"
        closed_ok = self.mode == "open" or (self.local == 0 and (not kept or self.applied >= self.answered))
        return self.ledger == self.answered_total and self.differing == 0 and self.open_leases == 0 and closed_ok

    def line(self) -> str:
        refused = ", ".join(f"{s}: {n}" for s, n in sorted(self.refused.items())) or "0"
        return (
            f"{self.mode:<6} {self.fault:<17} sent {self.sent:5d}  answered {self.answered:5d}  refused {refused:<12} "
            f"ledger {self.ledger:6d} of {self.answered_total:6d}  counters {self.counters} ({self.differing} differ)  "
            f"open leases {self.open_leases}  local {self.local:4d}  settled in {self.settle_s:.1f} s  "
            f"{'EXACT' if self.exact else 'NOT EXACT'}"
        )


class Stack:
    """The emulator, the private Redis behind its proxy, and three replicas, for one budget mode."""

    def __init__(self, tmp: Path, mode: str, spawn: Callable[..., Proc]) -> None:
        self.tmp, self.mode, self.spawn = tmp, mode, spawn
        self.redis = PrivateRedis(tmp)
        self.proxy: DelayProxy | None = None
        self.urls: list[str] = []
        self.totals = {"sent": 0, "answered": 0}

    async def start(self) -> None:
        self.redis.start()
        self.proxy = DelayProxy("127.0.0.1", self.redis.port)
        await self.proxy.start()
        pool = free_port()
        emu = self.spawn("emulate", "--port", str(pool), "--model", "small-model", "--latency-ms", "20")
        wait_http(f"http://127.0.0.1:{pool}/health", emu)
        policy = self.tmp / "policy.yaml"
        policy.write_text(POLICY.format(pool=pool, mode=self.mode))
        env = {"ROUTER_REDIS_URL": f"redis://127.0.0.1:{self.proxy.port}/0", "ROUTER_STATE_PREFIX": "m:",
               "ROUTER_API_KEYS": KEYS, "ROUTER_ACCESS_LOG": "false", "ROUTER_RELOAD_INTERVAL_S": "0",
               "ROUTER_REDIS_TIMEOUT_MS": str(TIMEOUT_MS)}  # fmt: skip
        procs = []
        for _ in range(3):
            port = free_port()
            procs.append(self.spawn("serve", "--policies", str(policy), "--port", str(port), env=env))
            self.urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(self.urls, procs, strict=True):
            await asyncio.to_thread(wait_http, f"{url}/readyz", proc)

    async def close(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()
        self.redis.stop()

    async def inject(self, fault: str) -> None:
        r, proxy = self.redis, self.proxy
        assert proxy is not None
        if fault == "killed":  # with an append-only file synced on every write: it comes back whole
            await _config(r, "appendonly", "yes")
            await _config(r, "appendfsync", "always")
            await asyncio.sleep(0.3)  # the file is rewritten from memory first
            r.kill()
            await asyncio.sleep(0.8)
            r.start(persist=True)
        elif fault == "restarted empty":
            r.kill()
            await asyncio.sleep(0.3)
            r.start()
        elif fault.startswith("frozen"):
            r.freeze(True)
            await asyncio.sleep(0.15 if "<" in fault else 1.2)
            r.freeze(False)
        else:
            proxy.delay_s = 0.6
            await asyncio.sleep(1.2)
            proxy.delay_s = 0.0

    async def run(self, fault: str) -> Result:
        answered, sent = 0, 0
        refused: dict[int, int] = {}
        stop = time.monotonic() + LOAD_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def client(n: int) -> None:
                nonlocal answered, sent
                for i in itertools.count():
                    if time.monotonic() >= stop:
                        return
                    url = self.urls[(n + i) % len(self.urls)]
                    status = await _chat(session, url, stream=(n + i) % 4 == 0)
                    sent += 1
                    if status == 200:
                        answered += 1
                    else:
                        refused[status] = refused.get(status, 0) + 1
                        await asyncio.sleep(0.05)

            async def fault_later() -> None:
                await asyncio.sleep(FAULT_AT_S)
                await self.inject(fault)

            await asyncio.gather(fault_later(), *(client(n) for n in range(CLIENTS)))
            self.totals["sent"] += sent
            self.totals["answered"] += answered
            started = time.monotonic()
            doc, ledger, local = await self._settled(session)
            settle_s = time.monotonic() - started
        differing = sum(1 for f in doc["findings"] if f["causes"])
        applied = await _closed(self.redis.url, "m:")
        if differing:
            print([f for f in doc["findings"] if f["causes"]], file=sys.stderr)
        total = self.totals["answered"]
        return Result(fault, self.mode, sent, answered, refused, total, ledger, doc["counters"], differing,
                      doc["open_leases"], local, applied, settle_s)  # fmt: skip

    async def _settled(self, session: aiohttp.ClientSession) -> tuple[dict[str, Any], int, int]:
        """Poll until every replica's store is up and the invariant and the ledger hold (or 15 s pass):
        settlements and replays finish in the background. Returns the last report, the ledger's requests
        and the reservations granted locally."""
        deadline = time.monotonic() + 15
        while True:
            ledger, local, doc = 0, 0, {}
            for url in self.urls:  # each flushes its own ledger before answering
                doc = await _admin(session, url, "/v1/admin/usage/verify")
                usage = await _admin(session, url, "/v1/admin/usage?group_by=tenant")
                ledger = int(usage.get("total", {}).get("requests", 0)) if usage else 0
                local += await _metric(session, url, "router_budget_local_reservations_total")
            done = bool(doc) and doc["exact"] and doc["open_leases"] == 0 and ledger == self.totals["answered"]
            if done or time.monotonic() > deadline:
                return doc, ledger, local
            await asyncio.sleep(0.3)


async def _config(r: PrivateRedis, name: str, value: str) -> None:
    client = aioredis.Redis.from_url(r.url)
    await client.config_set(name, value)
    await client.aclose()


async def _closed(url: str, prefix: str) -> int:
    """Leases closed in Redis (both of an id's bits set: applied, then settled, released or reaped), over
    every replica's bits. A ledger batch sets only the first."""
    client: Any = aioredis.Redis.from_url(url)
    total = 0
    async for key in client.scan_iter(match=f"{prefix}a:*"):
        raw = bytes(await client.get(key) or b"")
        total += sum(bin((b >> 1) & b & 0b01010101).count("1") for b in raw)  # pairs, high bit first
    await client.aclose()
    return total


async def _chat(session: aiohttp.ClientSession, url: str, stream: bool) -> int:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16, "stream": stream}
    try:
        async with session.post(
            f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ) as r:
            raw = await r.read()
            if r.status == 200 and stream and not raw.rstrip().endswith(b"data: [DONE]"):
                return 599
            return r.status
    except (TimeoutError, aiohttp.ClientError):
        return 598


async def _admin(session: aiohttp.ClientSession, url: str, path: str) -> dict[str, Any]:
    try:
        async with session.get(f"{url}{path}", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            if r.status != 200:
                return {}
            doc: dict[str, Any] = await r.json()
            return doc
    except aiohttp.ClientError:
        return {}


async def _metric(session: aiohttp.ClientSession, url: str, name: str) -> int:
    async with session.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    return 0


async def scenario(tmp: Path, mode: str, spawn: Callable[..., Proc], faults: tuple[str, ...] = FAULTS) -> list[Result]:
    stack = Stack(tmp, mode, spawn)
    try:
        await stack.start()
        return [await stack.run(fault) for fault in faults]
    finally:
        await stack.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--mode", choices=["open", "closed", "both"], default="both")
    ap.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, in order")
    args = ap.parse_args()
    exact = 0
    total = 0
    for run in range(args.runs):
        for mode in ("open", "closed") if args.mode == "both" else (args.mode,):
            with tempfile.TemporaryDirectory() as tmp:
                procs: list[Proc] = []
                spawn = spawner(Path(tmp), procs)

                try:
                    results = asyncio.run(scenario(Path(tmp), mode, spawn, tuple(args.faults.split(","))))
                finally:
                    for p in procs:
                        p.stop()
            for r in results:
                print(f"run {run + 1}: {r.line()}", flush=True)
                exact += r.exact
                total += 1
    print(f"{exact} of {total} fault runs exact")
    return 0 if exact == total else 1


if __name__ == "__main__":
    sys.exit(main())
