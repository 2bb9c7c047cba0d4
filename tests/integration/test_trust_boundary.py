"""Issue #12 against real `router serve` processes: the event loop never stalls whatever a caller (or a
policy edit) throws at it, slow or silent sockets are closed, and the admin listener keeps operators'
endpoints off the tenants' port."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import Proc, Spawn, free_port, wait_http

pytestmark = pytest.mark.integration

STALL_MS = 500  # a /healthz answer slower than this is a stall, not a slow host
POLL_S = 0.05

VLLM_ONLY = """
version: 1
clusters:
  pool: {{kind: vllm, endpoints: ["http://127.0.0.1:{pool}/v1"], model: m, health_check: {{metrics_interval_s: 0}}}}
  broken: {{kind: vllm, endpoints: ["http://127.0.0.1:{broken}/v1"], model: m,
            health_check: {{metrics_interval_s: 0}}, outlier_detection: {{consecutive_failures: 1000}}}}
models:
  m: {{cluster: pool}}
  broken: {{cluster: broken}}
auth: {{anonymous: true}}
"""

WITH_FRONTIER = """
version: 1
clusters:
  api:
    kind: frontier
    model: openai/m
    api_base: http://127.0.0.1:{api}/v1
    api_key_env: STALL_KEY
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 1.0}}
models:
  api: {{cluster: api}}
auth: {{anonymous: true}}
"""


def _start_proxy(spawn: Spawn, policy: Path, port: int, **env: str) -> Proc:
    proxy = spawn("serve", "--policies", str(policy), "--port", str(port), env=env)
    wait_http(f"http://127.0.0.1:{port}/readyz", proxy)
    return proxy


class Poller:
    """Polls /healthz every 50 ms; records every answer's time."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.samples: list[tuple[int, float, float]] = []  # port, ms, when it was sent
        self.stop = asyncio.Event()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.stop.is_set():
                for port in self.ports:
                    started = time.perf_counter()
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        assert resp.status == 200
                        await resp.read()
                    self.samples.append((port, (time.perf_counter() - started) * 1000, started))
                await asyncio.sleep(POLL_S)


async def _faults(vllm_port: int, api_port: int, policy: Path, spans: list[tuple[str, float, float]]) -> dict[str, int]:
    """Every fault of the issue, each at least once; the status each got (and when each ran, in ``spans``)."""
    got: dict[str, int] = {}
    user = {"role": "user", "content": "hello there"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        v, a = f"http://127.0.0.1:{vllm_port}/v1/chat/completions", f"http://127.0.0.1:{api_port}/v1/chat/completions"

        async def post(name: str, u: str, body: Any) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            started = time.perf_counter()
            async with s.post(u, data=data, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                got[name] = resp.status
            spans.append((name, started, time.perf_counter()))

        # The largest request the default limits take, through litellm's request transform.
        await post("2048 messages to a frontier model", a, {"model": "api", "messages": [user] * 2048})
        # Far past the limits: refused before any per-message work.
        await post("100,000 messages", v, {"model": "m", "messages": [user] * 100_000})
        await post("100,000 messages, frontier", a, {"model": "api", "messages": [user] * 100_000})
        await post("JSON 1,000 levels deep", v, b'{"model":"m","messages":' + b"[" * 1000 + b"]" * 1000 + b"}")
        await post("7 MB body", v, {"model": "m", "messages": [{"role": "user", "content": "x" * 7_000_000}]})
        # A stream that breaks half way with no usage: counted, in a worker thread, without litellm.
        await post("broken stream", v, {"model": "broken", "messages": [user], "stream": True})
        # A client that goes away mid-stream.
        async with s.post(v, json={"model": "broken", "messages": [user], "stream": True}) as resp:
            await resp.content.readany()
            got["client gone mid-stream"] = resp.status
        # Policy edits: an alias bomb, a self-referencing alias, a 3 MB file.
        good = await asyncio.to_thread(policy.read_text)
        for text in (
            good + "\nx: &a [*a]\n",
            good + "\nb: &b [" + ",".join(["lol"] * 9) + "]\nc: [" + ",".join(["*b"] * 9) + "]\n",
            good + "\n# " + "x" * 3_000_000 + "\n",
        ):
            started = time.perf_counter()
            await asyncio.to_thread(policy.write_text, text)
            await asyncio.sleep(0.6)  # the watcher looks every 0.2 s
            spans.append((f"policy edit {len(text)} bytes", started, time.perf_counter()))
        await asyncio.to_thread(policy.write_text, good)
        await asyncio.sleep(0.6)
    return got


async def test_no_fault_stalls_the_event_loop(spawn: Spawn, tmp_path: Path) -> None:
    pool, broken, api = free_port(), free_port(), free_port()
    procs = [
        spawn("emulate", "--port", str(pool), "--model", "m"),
        spawn("emulate", "--port", str(broken), "--model", "m", "--completion-tokens", "40"),
        spawn("emulate", "--port", str(api), "--model", "m"),
    ]
    for port, proc in zip((pool, broken, api), procs, strict=True):
        wait_http(f"http://127.0.0.1:{port}/health", proc)
    async with aiohttp.ClientSession() as s:
        cfg = {"break_stream_rate": 1.0, "send_usage": False}
        async with s.post(f"http://127.0.0.1:{broken}/emulator/config", json=cfg) as resp:
            assert resp.status == 200
    vllm_policy, api_policy = tmp_path / "vllm.yaml", tmp_path / "api.yaml"
    vllm_policy.write_text(VLLM_ONLY.format(pool=pool, broken=broken))
    api_policy.write_text(WITH_FRONTIER.format(api=api))
    vllm_port, api_port = free_port(), free_port()
    _start_proxy(spawn, vllm_policy, vllm_port, ROUTER_RELOAD_INTERVAL_S="0.2")
    _start_proxy(spawn, api_policy, api_port, STALL_KEY="sk-stall")

    poller = Poller([vllm_port, api_port])
    polling = asyncio.create_task(poller.run())
    await asyncio.sleep(0.5)
    spans: list[tuple[str, float, float]] = []
    try:
        got = await _faults(vllm_port, api_port, vllm_policy, spans)
    finally:
        poller.stop.set()
        await polling
    assert got == {
        "2048 messages to a frontier model": 200,
        "100,000 messages": 400,
        "100,000 messages, frontier": 400,
        "JSON 1,000 levels deep": 400,
        "7 MB body": 200,
        "broken stream": 200,
        "client gone mid-stream": 200,
    }
    slow = [
        (port, round(ms), [name for name, a, b in spans if a - 0.1 <= sent <= b + 0.1])
        for port, ms, sent in poller.samples
        if ms > STALL_MS
    ]
    worst = max(ms for _, ms, _ in poller.samples)
    print(f"/healthz: worst {worst:.0f} ms over {len(poller.samples)} polls")
    assert len(poller.samples) > 40
    assert not slow, f"/healthz stalled: {slow} (worst {worst:.0f} ms over {len(poller.samples)} polls)"


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within ``seconds``, and what it sent first."""
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True, data
            data += chunk
    except TimeoutError:
        return False, data
    except ConnectionResetError:
        return True, data


def test_slow_and_silent_sockets_are_closed(spawn: Spawn, tmp_path: Path) -> None:
    pool, port = free_port(), free_port()
    wait_http(f"http://127.0.0.1:{pool}/health", spawn("emulate", "--port", str(pool), "--model", "m"))
    policy = tmp_path / "p.yaml"
    policy.write_text(VLLM_ONLY.format(pool=pool, broken=pool))
    _start_proxy(spawn, policy, port, ROUTER_IDLE_TIMEOUT_S="1", ROUTER_BODY_TIMEOUT_S="1")
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    cases: dict[str, bytes] = {
        "silent": b"",
        "slowloris": head.encode()[:20],  # then one byte every 0.5 s, below
        "short body": (head + 'Content-Length: 1000\r\n\r\n{"model"').encode(),
        "chunked, no end": (head + 'Transfer-Encoding: chunked\r\n\r\n5\r\n{"mod\r\n').encode(),
    }
    results: dict[str, tuple[bool, float, bytes]] = {}
    for name, first in cases.items():
        sock = socket.create_connection(("127.0.0.1", port))
        started = time.monotonic()
        sock.sendall(first)
        if name == "slowloris":
            for ch in head.encode()[20:26]:
                time.sleep(0.5)
                try:
                    sock.sendall(bytes([ch]))
                except OSError:
                    break
        closed, data = _closed_within(sock, 6)
        results[name] = (closed, time.monotonic() - started, data)
        sock.close()
    for name, (closed, seconds, _) in results.items():
        assert closed, f"{name}: still open after {seconds:.1f} s"
        assert seconds < 5, f"{name}: closed only after {seconds:.1f} s"
    for name in ("short body", "chunked, no end"):
        assert results[name][2].startswith(b"HTTP/1.1 408"), results[name][2][:200]
        assert b"request_timeout" in results[name][2]
    # An idle keep-alive connection after a good request is closed too.
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    closed, data = _closed_within(sock, 6)
    sock.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert closed


def _get(url: str, key: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_admin_listener_serves_operators_and_the_api_port_does_not(spawn: Spawn, tmp_path: Path) -> None:
    pool, port, admin = free_port(), free_port(), free_port()
    wait_http(f"http://127.0.0.1:{pool}/health", spawn("emulate", "--port", str(pool), "--model", "m"))
    policy = tmp_path / "p.yaml"
    policy.write_text(VLLM_ONLY.format(pool=pool, broken=pool))
    proxy = spawn("serve", "--policies", str(policy), "--port", str(port), "--admin-port", str(admin))
    wait_http(f"http://127.0.0.1:{port}/readyz", proxy)
    wait_http(f"http://127.0.0.1:{admin}/readyz", proxy)
    api, ops = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"
    assert _get(api + "/metrics")[0] == 404
    assert _get(api + "/v1/admin/clusters")[0] == 404
    assert _get(api + "/readyz") == (200, '{"status":"ready"}')
    status, text = _get(ops + "/metrics")
    assert status == 200
    assert "router_requests_total" in text or "router_in_flight" in text
    status, text = _get(ops + "/readyz")
    assert status == 200
    assert json.loads(text)["clusters"]["pool"]["ready"] is True
    assert _get(ops + "/v1/chat/completions")[0] == 404  # tenants' API is not on the admin port
    status, text = _get(ops + "/v1/admin/clusters")  # no key needed on the operators' listener
    assert status == 200
    assert json.loads(text)["clusters"][0]["name"] == "pool"
    assert "serving the admin endpoints" in proxy.output()
