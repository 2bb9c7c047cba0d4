"""Chaos scenario: three emulated vLLM replicas and a frontier emulator behind one `router serve`, all
real processes on real ports, under steady concurrent load while faults are injected one after another.

    .venv/bin/python -m tests.integration.chaos        # run it and print the per-phase report

The same scenario runs under pytest (tests/integration/test_chaos.py), which asserts on the report.
Each client sends one request after another; one client in five streams. A request counts as failed
when its answer is not a 200 with a complete body; a stream that had started on a replica that died
ends with an SSE error event and ``[DONE]`` ("cut cleanly"), which is counted apart: after the first
byte no proxy can move a stream elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.integration.conftest import Proc, free_port, wait_http

CLIENTS = 50
BURST_CLIENTS = 100
POOL_LIMIT = 60

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: [{endpoints}]
    model: small-model
    timeouts: {{connect_s: 0.5, first_byte_s: 2, total_s: 5}}
    circuit_breaker: {{max_in_flight: {limit}}}
    max_attempts: 3
    health_check:
      {{interval_s: 0.5, timeout_s: 0.5, unhealthy_threshold: 1, healthy_threshold: 1, metrics_interval_s: 0.5}}
    outlier_detection:
      consecutive_failures: 3
      base_ejection_s: 2
      max_ejection_s: 10
      max_ejection_percent: 67
      probation_successes: 2
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/frontier-model
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
    api_key_env: CHAOS_KEY
    api_base: http://127.0.0.1:{api}/v1
    timeouts: {{connect_s: 0.5, first_byte_s: 3, total_s: 5}}
    circuit_breaker: {{max_in_flight: 1000}}
    cooldown: {{consecutive_failures: 2, base_s: 1, max_s: 5}}
models:
  chat: {{cluster: pool}}
auth: {{anonymous: true, admin_without_key: true}}
"""


@dataclass
class Phase:
    name: str
    sent: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # by status (or "timeout", "error")
    clusters: Counter[str] = field(default_factory=Counter)
    cut_cleanly: int = 0  # streams that broke after their first byte and ended with an error event + [DONE]
    cut_uncleanly: int = 0  # streams that ended without [DONE]: must never happen
    no_retry_after: int = 0  # 503s without Retry-After: must never happen
    latencies: list[float] = field(default_factory=list)

    def add(self, one: Phase, seconds: float) -> None:
        self.sent += one.sent
        self.ok += one.ok
        self.failed.update(one.failed)
        self.clusters.update(one.clusters)
        self.cut_cleanly += one.cut_cleanly
        self.cut_uncleanly += one.cut_uncleanly
        self.no_retry_after += one.no_retry_after
        self.latencies.append(seconds)

    @property
    def p99_ms(self) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(0.99 * len(xs)))] * 1000 if xs else 0.0

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def row(self) -> str:
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(self.failed.items())) or "0"
        where = ", ".join(f"{k} {v}" for k, v in sorted(self.clusters.items()))
        return (
            f"{self.name:<28} sent {self.sent:>5}  ok {self.ok:>5}  failed {failed:<18} "
            f"cut cleanly {self.cut_cleanly:>2}  p99 {self.p99_ms:>6.0f} ms  answered by: {where}"
        )


class Load:
    """Closed-loop clients; ``clients`` of them are active at a time; results go to the current phase."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.clients = 0
        self.phase = Phase("warm-up")
        self._stop = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, most: int) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(most)]

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, i: int) -> None:
        while not self._stop:
            if i >= self.clients:
                await asyncio.sleep(0.05)
                continue
            started = time.perf_counter()
            result = Phase("one request")
            await self._one(result, stream=i % 5 == 0)
            # Counted in the phase in which it completed: a request cut by a fault counts with the fault.
            self.phase.add(result, time.perf_counter() - started)

    async def _one(self, phase: Phase, stream: bool) -> None:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "stream": stream}
        phase.sent += 1
        try:
            async with self.session.post(self.url, json=body, timeout=aiohttp.ClientTimeout(total=8)) as resp:
                raw = await resp.read()
                if resp.status == 503 and "Retry-After" not in resp.headers:
                    phase.no_retry_after += 1
                if resp.status != 200:
                    phase.failed[str(resp.status)] += 1
                    return
                phase.clusters[resp.headers.get("x-router-cluster", "?")] += 1
        except TimeoutError:
            phase.failed["timeout"] += 1
            return
        except aiohttp.ClientError as exc:
            phase.failed[type(exc).__name__] += 1
            return
        if not stream:
            if orjson.loads(raw).get("choices"):
                phase.ok += 1
            else:
                phase.failed["bad body"] += 1
            return
        events = [e[6:] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
        done = bool(events) and events[-1] == b"[DONE]"
        errored = any(e.startswith(b'{"error"') for e in events)
        if not done:
            phase.cut_uncleanly += 1
            phase.failed["stream without [DONE]"] += 1
        elif errored:
            phase.cut_cleanly += 1
        else:
            phase.ok += 1


def emulator_config(port: int, **changes: object) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/emulator/config", orjson.dumps(changes), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def admin(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/admin/clusters", timeout=5) as resp:
        doc = orjson.loads(resp.read())
    return {c["name"]: c for c in doc["clusters"]}


@dataclass
class Stack:
    """The processes of the scenario; ``spawn`` starts one (a pytest fixture or a local helper)."""

    spawn: Callable[..., Proc]
    tmp: Path
    replicas: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    api: int = field(default_factory=free_port)
    proxy: int = field(default_factory=free_port)
    procs: dict[int, Proc] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    tiers: bool = False  # replicas 0 and 1 on spot capacity, 2 on demand

    def start_emulator(self, port: int, model: str) -> None:
        args = ["emulate", "--port", str(port), "--model", model, "--latency-ms", "40", "--ttft-ms", "20"]
        proc = self.spawn(*args, "--tokens-per-second", "400")
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        self.procs[port] = proc

    def start_emulators(self, ports: Sequence[int]) -> None:
        for port in ports:
            self.start_emulator(port, "small-model")

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(5)

    def start(self) -> None:
        for port in self.replicas:
            self.start_emulator(port, "small-model")
        self.start_emulator(self.api, "frontier-model")
        endpoints = ", ".join(f'"http://127.0.0.1:{p}/v1"' for p in self.replicas)
        if self.tiers:
            tier = ["{tier: spot, usd_per_gpu_hour: 0.9", "{tier: spot, usd_per_gpu_hour: 0.9", "{tier: on-demand"]
            endpoints = ", ".join(
                f'{t}, url: "http://127.0.0.1:{p}/v1"}}' for t, p in zip(tier, self.replicas, strict=True)
            )
        policy = self.tmp / "chaos.yaml"
        policy.write_text(POLICY.format(endpoints=endpoints, api=self.api, limit=POOL_LIMIT))
        proc = self.spawn(
            "serve", "--policies", str(policy), "--port", str(self.proxy),
            env={
                "CHAOS_KEY": "sk-chaos",
                "ROUTER_ACCESS_LOG": "true" if os.environ.get("CHAOS_LOGS") else "false",
                "ROUTER_RELOAD_INTERVAL_S": "0",
            },
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{self.proxy}/readyz", proc)


async def run(stack: Stack, phase_s: float = 3.0) -> list[Phase]:
    """The whole scenario; returns one record per phase (see the module docstring)."""
    stack.start()
    r0, r1, r2 = stack.replicas
    url = f"http://127.0.0.1:{stack.proxy}/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=0)
    phases: list[Phase] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        load = Load(session, url)
        load.clients = CLIENTS
        load.start(BURST_CLIENTS)
        await asyncio.sleep(1.0)  # warm-up, not counted

        async def phase(name: str, seconds: float, before: Callable[[], Awaitable[None] | None] | None = None) -> Phase:
            p = Phase(name)
            load.phase = p  # the fault is injected inside its phase: requests during the change count there
            if before is not None:
                maybe = before()
                if maybe is not None:
                    await maybe
            await asyncio.sleep(seconds)
            phases.append(p)
            return p

        loop = asyncio.get_running_loop()

        def off(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
            return lambda: loop.run_in_executor(None, fn)

        await phase("steady", phase_s)
        await phase("replica 0 SIGKILLed", phase_s + 1, off(lambda: stack.kill(r0)))
        stack.notes["after kill"] = admin(stack.proxy)["pool"]
        await phase("replica 1 answers 500", phase_s + 1, off(lambda: emulator_config(r1, failure_rate=1.0)))
        stack.notes["after 500s"] = admin(stack.proxy)["pool"]

        def recover() -> None:
            emulator_config(r1, failure_rate=0.0)
            stack.start_emulator(r0, "small-model")

        await phase("replicas 0 and 1 recover", phase_s + 1, off(recover))
        stack.notes["after recovery"] = admin(stack.proxy)["pool"]
        before = {e["url"]: e["attempts"] for e in admin(stack.proxy)["pool"]["endpoints"]}
        await phase("replica 2 slow (400 ms)", phase_s, off(lambda: emulator_config(r2, latency_ms=400, ttft_ms=400)))
        stack.notes["slow attempts"] = {
            e["url"]: e["attempts"] - before[e["url"]] for e in admin(stack.proxy)["pool"]["endpoints"]
        }

        def burst() -> None:
            emulator_config(r2, latency_ms=40, ttft_ms=20)
            for port in stack.replicas:
                emulator_config(port, latency_ms=250, ttft_ms=250)
            load.clients = BURST_CLIENTS

        await phase(f"pool full ({BURST_CLIENTS} clients)", phase_s, off(burst))

        def pool_down() -> None:
            load.clients = CLIENTS
            for port in stack.replicas:
                stack.kill(port)

        await phase("whole pool SIGKILLed", phase_s, off(pool_down))
        await phase("frontier down too", phase_s, off(lambda: stack.kill(stack.api)))

        def everything_back() -> None:
            for port in [*stack.replicas, stack.api]:
                stack.start_emulator(port, "frontier-model" if port == stack.api else "small-model")

        await phase("all restarting", phase_s, off(everything_back))
        await phase("recovered", phase_s)
        stack.notes["at the end"] = admin(stack.proxy)["pool"]
        await load.stop()
    return phases


def attempts_by_endpoint(port: int) -> dict[str, int]:
    return {e["url"]: e["attempts"] for e in admin(port)["pool"]["endpoints"]}


async def run_tiers(stack: Stack, phase_s: float = 2.0) -> list[Phase]:
    """Spot capacity: the pool's two spot replicas take the traffic while they last; one reclaimed (SIGKILL,
    requests in flight on it) moves part of it on demand, both gone moves all of it, and their return
    brings it back. ``stack.notes[phase name]``: attempts per endpoint during each phase."""
    stack.tiers = True
    stack.start()
    spot0, spot1, _ = stack.replicas
    stack.notes["tiers"] = {e["url"]: e["tier"] for e in admin(stack.proxy)["pool"]["endpoints"]}
    url = f"http://127.0.0.1:{stack.proxy}/v1/chat/completions"
    phases: list[Phase] = []
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        load = Load(session, url)
        load.clients = CLIENTS // 2
        load.start(CLIENTS // 2)
        await asyncio.sleep(0.5)
        for name, fault in (
            ("spot and on-demand up", None),
            ("spot replica 0 reclaimed", lambda: stack.kill(spot0)),
            ("all spot reclaimed", lambda: stack.kill(spot1)),
            ("spot back", lambda: stack.start_emulators((spot0, spot1))),
        ):
            p = Phase(name)
            load.phase = p
            if fault is not None:
                await loop.run_in_executor(None, fault)
            if name == "spot back":
                await asyncio.sleep(1.0)  # the health checks see them (interval 0.5 s); then measure
                p = load.phase = Phase(name)
            before = await loop.run_in_executor(None, attempts_by_endpoint, stack.proxy)
            await asyncio.sleep(phase_s)
            after = await loop.run_in_executor(None, attempts_by_endpoint, stack.proxy)
            stack.notes[name] = {u: after[u] - before[u] for u in after}
            phases.append(p)
        await load.stop()
    return phases


def report(phases: list[Phase]) -> str:
    return "\n".join(p.row() for p in phases)


def main() -> int:
    from tests.integration.conftest import Proc as P
    from tests.integration.conftest import spawner

    procs: list[P] = []
    keep = os.environ.get("CHAOS_LOGS")  # a directory to keep the processes' logs in (access log included)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(keep or d)
        tmp.mkdir(parents=True, exist_ok=True)

        stack = Stack(spawner(tmp, procs), tmp)
        try:
            phases = asyncio.run(run(stack))
        finally:
            for proc in procs:
                proc.stop()
    print(report(phases))
    print("attempts per replica while replica 2 was slow:", stack.notes.get("slow attempts"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
