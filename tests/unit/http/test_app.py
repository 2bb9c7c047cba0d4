"""The app as built by create_app (a real policy file, a real client session, upstreams that refuse
connections) and the admin listener's app over the same state."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from router.http.app import create_app
from router.http.keys import ACCOUNTING, PIPELINE
from router.settings import Settings

Client = TestClient[Any, Any]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        f"""
version: 1
clusters:
  pool: {{kind: vllm, model: m, endpoints: ["http://127.0.0.1:{_closed_port()}/v1"]}}
models:
  m: {{cluster: pool}}
auth: {{anonymous: true, admin_without_key: true}}
"""
    )
    return Settings(policies=policy, classifier=False, **extra)


async def test_the_app_starts_with_every_upstream_down_and_says_so(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    app = create_app(_settings(tmp_path), env={})
    assert app[PIPELINE].accounting is app[ACCOUNTING]  # one ledger: the one the usage report flushes
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 503  # the health checks found the only endpoint refusing connections
    assert (await client.get("/v1/admin/usage")).status == 200
    resp = await client.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )
    assert resp.status == 502  # the panic pass tried the endpoint the checks call down: refused
    message = (await resp.json())["error"]["message"]
    assert message.startswith("Every upstream attempt failed: ")
    assert "pool: could not be reached" in message
