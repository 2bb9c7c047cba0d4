"""The dashboard's proving ground: three `router serve` replicas sharing the machine's Redis, emulated vLLM
replicas (one answering 500s), an emulated frontier API, and a real Prometheus scraping them all with the
shipped rules loaded; then a short load that exercises every panel (classification, spill-over, retries,
ejection, failover, a 503, a budget refusal, a bad key, streams).

    .venv/bin/python -m tests.integration.observed     # run it and print every query with its result

tests/integration/test_prometheus.py runs it under pytest and fails on any query without data.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from router.tenancy.keys import hash_key
from tests.integration.conftest import Proc, free_port, wait_http

ROOT = Path(__file__).parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "router.json"
RULES = ROOT / "deploy" / "prometheus"
KEY_A, KEY_POOR, ADMIN = "sk-obs-a", "sk-obs-poor", "sk-obs-ops"
KEYS = f"a:{hash_key(KEY_A)},poor:{hash_key(KEY_POOR)},ops:{hash_key(ADMIN)}:admin"

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["http://127.0.0.1:{p0}/v1", "http://127.0.0.1:{p1}/v1"]
    model: small-model
    health_check: {{interval_s: 0.5, metrics_interval_s: 0.5}}
    circuit_breaker: {{max_in_flight: 2}}
    cost: {{usd_per_gpu_hour: 2.5, input_tokens_per_second: 100000, output_tokens_per_second: 20000}}
    fallbacks: [api]
  flaky:
    kind: vllm
    endpoints: ["http://127.0.0.1:{bad}/v1", "http://127.0.0.1:{p1}/v1"]
    model: small-model
    health_check: {{interval_s: 0.5, metrics_interval_s: 0}}
    outlier_detection: {{consecutive_failures: 2, base_ejection_s: 1, max_ejection_s: 2, max_ejection_percent: 50}}
    fallbacks: [api]
  strict:
    kind: vllm
    endpoints: ["http://127.0.0.1:{bad}/v1", "http://127.0.0.1:{p0}/v1"]
    model: small-model
    health_check: {{interval_s: 0.5, metrics_interval_s: 0}}
    circuit_breaker: {{max_retries: 0, min_retry_concurrency: 0}}
    outlier_detection: {{consecutive_failures: 100}}
    fallbacks: [api]
  broken:
    kind: vllm
    endpoints: ["http://127.0.0.1:{dead}/v1"]
    model: small-model
    health_check: {{interval_s: 0.5, metrics_interval_s: 0}}
  api:
    kind: frontier
    model: openai/frontier-model
    api_key_env: OBS_KEY
    api_base: http://127.0.0.1:{api}/v1
    price: {{input_usd_per_mtok: 5, output_usd_per_mtok: 15}}
models:
  auto: {{default_route: general}}
  small: {{cluster: pool}}
  flaky: {{cluster: flaky}}
  strict: {{cluster: strict}}
  broken: {{cluster: broken}}
routes:
  - name: hard
    match: {{models: [auto], tasks: [coding, math]}}
    cluster: api
  - name: general
    target_only: true
    cluster: pool
auth: {{anonymous: false}}
costs: {{baseline_model: openai/gpt-4o, baseline_price: {{input_usd_per_mtok: 5, output_usd_per_mtok: 15}}}}
budgets:
  - {{name: a-daily, tenant: a, usd_per_day: 1000}}
  - {{name: poor-daily, tenant: poor, usd_per_day: 0.000001, on_exhausted: deny}}
"""

PROMETHEUS = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: router
    authorization: {{credentials: {admin}}}
    static_configs: [{{targets: [{proxies}]}}]
  - job_name: vllm
    static_configs: [{{targets: [{pools}]}}]
"""

PROMPTS = {
    "coding": "Write a Python function that merges two sorted lists into one sorted list, with tests.",
    "math": "Solve for x: 3x + 7 = 22, and show each step of the algebra.",
    "extraction": "Extract every person's name and email address from this text: Ann (ann@x.org) met Bo.",
    "summarization": "Summarize this paragraph in one sentence: the meeting moved to Tuesday because of rain.",
}


@dataclass
class Stack:
    spawn: Callable[..., Proc]
    tmp: Path
    prefix: str = field(default_factory=lambda: f"obs:{uuid.uuid4().hex[:10]}:")
    pools: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    bad: int = field(default_factory=free_port)
    dead: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)
    proxies: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    prometheus_port: int = field(default_factory=free_port)
    prometheus: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        emulators: list[tuple[int, list[str]]] = [(p, []) for p in self.pools]
        emulators.append((self.bad, ["--failure-rate", "1.0"]))
        for port, extra in [*emulators, (self.api, [])]:
            model = "frontier-model" if port == self.api else "small-model"
            args = ["emulate", "--port", str(port), "--model", model, "--ttft-ms", "20", "--latency-ms", "20"]
            proc = self.spawn(*args, *extra, "--tokens-per-second", "500")
            wait_http(f"http://127.0.0.1:{port}/health", proc)
        policy = self.tmp / "observed.yaml"
        policy.write_text(POLICY.format(p0=self.pools[0], p1=self.pools[1], bad=self.bad, dead=self.dead, api=self.api))
        env = {
            "OBS_KEY": "sk-obs",
            "ROUTER_REDIS_URL": "redis://127.0.0.1:6379/0",
            "ROUTER_STATE_PREFIX": self.prefix,
            "ROUTER_API_KEYS": KEYS,
            "ROUTER_CLASSIFIER": "true",
            "ROUTER_ECONOMICS_INTERVAL_S": "1",
            "ROUTER_RELOAD_INTERVAL_S": "0",
        }
        procs = [self.spawn("serve", "--policies", str(policy), "--port", str(p), env=env) for p in self.proxies]
        for port, proc in zip(self.proxies, procs, strict=True):
            wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout_s=180)
        self.start_prometheus()

    def start_prometheus(self) -> None:
        exe = shutil.which("prometheus")
        assert exe is not None, "prometheus is not installed"
        # The shipped rules, evaluated every second instead of every 30 s (the same expressions).
        rules = []
        for name in ("alerts.yaml", "recording.yaml"):
            text = re.sub(r"interval: \d+s", "interval: 1s", (RULES / name).read_text())
            (self.tmp / name).write_text(text)
            rules.append(str(self.tmp / name))
        config = self.tmp / "prometheus.yml"
        config.write_text(
            PROMETHEUS.format(
                rules=", ".join(rules),
                admin=ADMIN,
                proxies=", ".join(f"'127.0.0.1:{p}'" for p in self.proxies),
                pools=", ".join(f"'127.0.0.1:{p}'" for p in [*self.pools, self.bad]),
            )
        )
        log = (self.tmp / "prometheus.log").open("wb")
        self.prometheus = subprocess.Popen(
            [
                exe,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.prometheus_port}/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError((self.tmp / "prometheus.log").read_text())

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.terminate()
            self.prometheus.wait(10)
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{self.prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()

    # -- Prometheus's HTTP API -------------------------------------------------------------------
    def api_get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.prometheus_port}{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api_get("/api/v1/query", query=expr)["result"]
        return result


async def load(stack: Stack, seconds: float) -> dict[str, int]:
    """Traffic that touches every panel; returns the count of answers by status."""
    statuses: dict[str, int] = {}
    urls = [f"http://127.0.0.1:{p}/v1/chat/completions" for p in stack.proxies]
    stop = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession, i: int, model: str, key: str, stream: bool = False) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            prompt = list(PROMPTS.values())[(i + n) % len(PROMPTS)]
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}
            headers = {"Authorization": f"Bearer {key}"}
            try:
                async with session.post(urls[(i + n) % 3], json=body, headers=headers) as resp:
                    await resp.read()
                    statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
            except aiohttp.ClientError:
                statuses["error"] = statuses.get("error", 0) + 1
            if model in ("broken", "strict", "flaky") or key != KEY_A:
                await asyncio.sleep(0.2)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        jobs = [client(session, i, "small", KEY_A, stream=i % 2 == 0) for i in range(8)]  # past the pool's limit
        jobs += [client(session, i, "auto", KEY_A, stream=i == 0) for i in range(3)]
        jobs += [client(session, i, m, KEY_A) for i, m in enumerate(("flaky", "strict", "broken"))]
        jobs += [client(session, 0, "small", KEY_POOR), client(session, 1, "small", "sk-wrong")]
        await asyncio.gather(*jobs)
    return statuses


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, with Grafana's interval variables filled in."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$__interval", "15s")
            out.append((panel["title"], expr))
    return out


def sides(expr: str) -> list[str]:
    """The operands of an alert's top-level comparison (``a > b``: a and b; a number is dropped): each
    must return data for the alert to mean anything."""
    depth, quote, i = 0, "", 0
    ops = ("==", "!=", ">=", "<=", ">", "<")
    while i < len(expr):
        ch = expr[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            op = next((o for o in ops if expr.startswith(o, i)), None)
            if op is not None and not expr.startswith("=~", i):
                left, right = expr[:i].strip(), expr[i + len(op) :].strip()
                return [s for s in (left, right) if not re.fullmatch(r"[-+0-9.e]+", s)]
        i += 1
    return [expr.strip()]


def rule_queries() -> list[tuple[str, str]]:
    """(rule name, PromQL) for every alert's operands and every recording rule's recorded series."""
    import yaml

    out = []
    for name in ("alerts.yaml", "recording.yaml"):
        for group in yaml.safe_load((RULES / name).read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out += [(rule["alert"], side) for side in sides(rule["expr"])]
                else:
                    out.append((rule["record"], rule["record"]))
    return out


def empty_queries(stack: Stack, queries: list[tuple[str, str]], within_s: float) -> list[tuple[str, str]]:
    """The queries still without data after ``within_s`` seconds of asking again."""
    left = list(queries)
    deadline = time.monotonic() + within_s
    while left and time.monotonic() < deadline:
        left = [(name, q) for name, q in left if not stack.query(q)]
        if left:
            time.sleep(1)
    return left


def main() -> int:
    from tests.integration.conftest import spawner

    procs: list[Proc] = []
    with tempfile.TemporaryDirectory() as d:
        stack = Stack(spawner(Path(d), procs), Path(d))
        try:
            stack.start()
            print(asyncio.run(load(stack, 15)))
            for name, q in dashboard_queries() + rule_queries():
                print(f"{len(stack.query(q)):>3} series  {name}: {q}")
        finally:
            stack.stop()
            for p in procs:
                p.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
