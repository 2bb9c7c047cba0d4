"""The proxy as services see it: separate processes, real ports, the official OpenAI SDK."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from router.tenancy.keys import hash_key
from tests.integration.conftest import Proc, Spawn, free_port, wait_http

KEY = "sk-router-integration-0123456789"

pytestmark = pytest.mark.integration

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["http://127.0.0.1:{pool}/v1"]
    model: small-model
    adapters: [extract-lora]
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/frontier-model
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
    api_key_env: INTEGRATION_KEY
    api_base: http://127.0.0.1:{api}/v1
models:
  auto: {{default_route: general}}
  extract: {{cluster: pool, adapter: extract-lora}}
auth: {{anonymous: true, admin_without_key: true}}
routes:
  - name: tools
    match: {{models: [auto], has_tools: true}}
    cluster: api
  - name: general
    match: {{models: [auto]}}
    cluster: pool
"""


@pytest.fixture
def stack(spawn: Spawn, tmp_path: Path) -> dict[str, object]:
    pool_port, api_port, port = free_port(), free_port(), free_port()
    pool = spawn(
        "emulate",
        "--port",
        str(pool_port),
        "--model",
        "small-model",
        "--lora",
        "extract-lora",
        "--tokens-per-second",
        "2000",
    )
    api = spawn("emulate", "--port", str(api_port), "--model", "frontier-model")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(pool=pool_port, api=api_port))
    wait_http(f"http://127.0.0.1:{pool_port}/health", pool)
    wait_http(f"http://127.0.0.1:{api_port}/health", api)
    proxy = spawn(
        "serve",
        "--policies",
        str(policy),
        "--port",
        str(port),
        env={"INTEGRATION_KEY": "sk-int", "ROUTER_RELOAD_INTERVAL_S": "0", "ROUTER_API_KEYS": f"it:{hash_key(KEY)}"},
    )
    wait_http(f"http://127.0.0.1:{port}/readyz", proxy)
    # The SDK always sends a key: a real one (with anonymous access a made-up key is a 401).
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=10)
    return {"client": client, "proxy": proxy, "policy": policy, "pool": pool}


def test_openai_sdk_non_streaming(stack: dict[str, object]) -> None:
    client = stack["client"]
    assert isinstance(client, openai.OpenAI)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Extract the date: 3 May"}], max_tokens=5
    )
    assert raw.headers["x-router-cluster"] == "pool"
    completion = raw.parse()
    assert completion.choices[0].message.content == "this is an emulated answer"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    lora = client.chat.completions.with_raw_response.create(
        model="extract", messages=[{"role": "user", "content": "x"}]
    )
    assert lora.headers["x-router-upstream-model"] == "extract-lora"


def test_openai_sdk_streaming_and_tools(stack: dict[str, object]) -> None:
    client = stack["client"]
    assert isinstance(client, openai.OpenAI)
    stream = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("this is an emulated answer")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 16
    tools: list[Any] = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    ]
    with_tools = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "call f"}],
        tools=tools,
    )
    assert with_tools.headers["x-router-route"] == "tools"
    assert with_tools.headers["x-router-cluster"] == "api"


def test_openai_sdk_errors(stack: dict[str, object]) -> None:
    client = stack["client"]
    assert isinstance(client, openai.OpenAI)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "does not exist" in str(missing.value)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="auto", messages=[{"role": "wizard", "content": "x"}])  # type: ignore[misc,list-item]
    assert bad.value.body is not None


def test_sighup_with_a_bad_policy_keeps_serving(stack: dict[str, object]) -> None:
    client, proxy, policy = stack["client"], stack["proxy"], stack["policy"]
    assert isinstance(client, openai.OpenAI)
    assert isinstance(policy, Path)
    policy.write_text(policy.read_text().replace("cluster: pool\n", "cluster: ghost\n"))
    proxy.popen.send_signal(signal.SIGHUP)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while "reload rejected" not in proxy.output() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.1)
    assert "unknown cluster 'ghost'" in proxy.output()  # type: ignore[attr-defined]
    reply = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert reply.headers["x-router-cluster"] == "pool"


def test_router_status_shows_the_live_clusters(stack: dict[str, object]) -> None:
    import subprocess
    import sys

    client = stack["client"]
    assert isinstance(client, openai.OpenAI)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    url = str(client.base_url).removesuffix("/v1/")
    out = subprocess.run(
        [sys.executable, "-m", "router", "status", "--url", url], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("pool (vllm, small-model): in flight 0/256")
    assert "  up        http://127.0.0.1:" in out
    assert "attempts 1, failures 0, ejections 0, ttft ~" in out  # its own latency, the EWMA while the p95 warms up
    assert "(ewma, 1 samples) vllm running 0.0 waiting 0.0" in out
    assert "api (frontier, openai/frontier-model)" in out
    spent = subprocess.run(
        [sys.executable, "-m", "router", "usage", "--url", url, "--group-by", "tenant"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert spent[1].split()[:2] == ["tenant", "requests"]
    assert spent[2].split()[:2] == ["it", "1"]  # the SDK's key: tenant `it`
    bad = subprocess.run(
        [sys.executable, "-m", "router", "status", "--url", "http://127.0.0.1:9"], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: http://127.0.0.1:9/v1/admin/clusters:")


def test_upstream_down_spills_to_frontier(stack: dict[str, object]) -> None:
    client, pool = stack["client"], stack["pool"]
    assert isinstance(client, openai.OpenAI)
    pool.stop()  # type: ignore[attr-defined]
    reply = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert reply.headers["x-router-cluster"] == "api"
    assert reply.parse().choices[0].message.content


def slow_stream_proxy(spawn: Spawn, tmp_path: Path, **env: str) -> tuple[Proc, int, openai.OpenAI]:
    """A proxy over a pool whose answers stream 30 tokens at 20 a second, and a client of it."""
    pool_port, port = free_port(), free_port()
    pool = spawn(
        "emulate", "--port", str(pool_port), "--model", "m", "--tokens-per-second", "20", "--completion-tokens", "30"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f'version: 1\nclusters:\n  p: {{kind: vllm, endpoints: ["http://127.0.0.1:{pool_port}/v1"], '
        "model: m}\nmodels:\n  m: {cluster: p}\nauth: {anonymous: true}\n"
    )
    wait_http(f"http://127.0.0.1:{pool_port}/health", pool)
    keys = {"ROUTER_API_KEYS": f"it:{hash_key(KEY)}", **env}
    proxy = spawn("serve", "--policies", str(policy), "--port", str(port), env=keys)
    wait_http(f"http://127.0.0.1:{port}/readyz", proxy)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=10)
    return proxy, port, client


def test_sigterm_drains_a_stream_in_flight(spawn: Spawn, tmp_path: Path) -> None:
    proxy, _, client = slow_stream_proxy(spawn, tmp_path)
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    chunks = [next(iter(stream))]
    proxy.popen.send_signal(signal.SIGTERM)
    chunks += list(stream)  # the SDK stops at [DONE]; a cut stream would raise instead
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 30
    assert proxy.popen.wait(10) == 0


def test_sigterm_first_turns_readyz_away_while_still_serving(spawn: Spawn, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    proxy, port, client = slow_stream_proxy(spawn, tmp_path, ROUTER_DRAIN_NOTICE_S="2")
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    chunks = [next(iter(stream))]
    stopped_at = time.monotonic()
    proxy.popen.send_signal(signal.SIGTERM)
    probe: tuple[int, bytes] | None = None  # what the load balancer's probe sees
    deadline = time.monotonic() + 1.5
    while probe is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
            time.sleep(0.02)
        except urllib.error.HTTPError as exc:
            probe = (exc.code, exc.read())
    assert probe is not None
    assert probe[0] == 503
    assert b"draining" in probe[1]
    late = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "y"}])
    assert late.status_code == 200  # still served during the notice
    chunks += list(stream)
    assert len("".join(c.choices[0].delta.content or "" for c in chunks if c.choices).split()) == 30
    assert proxy.popen.wait(10) == 0
    assert time.monotonic() - stopped_at >= 2  # the notice was given
    log = proxy.output()
    assert "draining: /readyz answers 503 for 2 s while requests are still served" in log
    assert "stopping: no new connections" in log
    assert "stopped: every request finished" in log
