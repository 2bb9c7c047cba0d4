"""A standing fuzz test of the trust boundary, driven by OpenAI's own Chat Completions schema
(``tests/fixtures/openai-spec``) through schemathesis: valid and invalid requests, some carrying
connection fields or image URLs that point at a listener no request may reach, against a real
``router serve`` over a vLLM pool and a frontier API (litellm), both emulated.

Asserted for every request: no 5xx; every 4xx is OpenAI error JSON; every 200 is a completion or an SSE
stream that ends in ``[DONE]``. After all of them: the listener saw no connection at all.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from router.api.fields import CONNECTION, OPERATOR
from tests.integration.conftest import Spawn, free_port, wait_http

pytestmark = pytest.mark.integration

SPEC = Path(__file__).parents[1] / "fixtures" / "openai-spec" / "chat-completions.openapi.json"
OPERATION = schemathesis.openapi.from_path(str(SPEC))["/chat/completions"]["POST"]
EXAMPLES = 150  # per mode; about 20 s in all

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["http://127.0.0.1:{pool}/v1"]
    model: m
    health_check: {{metrics_interval_s: 0}}
    outlier_detection: {{consecutive_failures: 10000}}
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/m
    api_base: http://127.0.0.1:{api}/v1
    api_key_env: FUZZ_KEY
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 1.0}}
    cooldown: {{consecutive_failures: 10000}}
models:
  auto: {{default_route: general}}
  pool: {{cluster: pool}}
  api: {{cluster: api}}
auth: {{anonymous: true}}
routes:
  - name: tools
    match: {{models: [auto], has_tools: true}}
    cluster: api
  - name: general
    target_only: true
    cluster: pool
"""


class Canary:
    """A listener on a port no configured upstream uses; counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def target(spawn: Spawn, tmp_path: Path) -> Iterator[tuple[str, Canary]]:
    pool, api, port = free_port(), free_port(), free_port()
    for p in (pool, api):
        wait_http(f"http://127.0.0.1:{p}/health", spawn("emulate", "--port", str(p), "--model", "m"))
    policy = tmp_path / "fuzz.yaml"
    policy.write_text(POLICY.format(pool=pool, api=api))
    proxy = spawn("serve", "--policies", str(policy), "--port", str(port), env={"FUZZ_KEY": "sk-fuzz"})
    wait_http(f"http://127.0.0.1:{port}/readyz", proxy)
    canary = Canary()
    yield f"http://127.0.0.1:{port}/v1/chat/completions", canary
    canary.close()
    assert "Traceback" not in proxy.output(), proxy.output()[-3000:]


def _lure(body: Any, canary: str, pick: int) -> Any:
    """Point something in the body at the canary: a connection field, or an image URL."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if pick == 0:
        body["api_base"] = canary
    elif pick == 1:
        body["extra_body"] = {"base_url": canary}
    elif pick == 2:
        image = {"type": "image_url", "image_url": {"url": canary + "/secret.png"}}
        body["messages"] = [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]
    elif pick >= 4:  # the fields the proxy refuses on purpose left out, so more requests go upstream
        body = {k: v for k, v in body.items() if k not in CONNECTION | OPERATOR}
    return body


def _check(resp: requests.Response, body: Any) -> None:
    where = f"{resp.status_code} for {json.dumps(body, default=str)[:600]}: {resp.text[:600]}"
    assert resp.status_code < 500, where
    if resp.status_code >= 400:
        doc = resp.json()
        assert set(doc) == {"error"}, where
        assert set(doc["error"]) == {"message", "type", "param", "code"}, where
        assert "Traceback" not in doc["error"]["message"], where
    elif resp.headers["Content-Type"].startswith("text/event-stream"):
        assert resp.text.rstrip().endswith("data: [DONE]"), where
    else:
        assert resp.json()["object"] == "chat.completion", where


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_requests_from_the_openai_schema(target: tuple[str, Canary], mode: GenerationMode) -> None:
    url, canary = target
    session = requests.Session()
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(
        case=OPERATION.as_strategy(generation_mode=mode),
        model=st.sampled_from(["auto", "pool", "api", None]),
    )
    def run(case: Any, model: str | None) -> None:
        body = case.body
        if isinstance(body, dict) and model is not None:
            body = {**body, "model": model}
        # Which lure, from the body itself: spread evenly (a drawn integer would shrink towards one).
        rng = random.Random(zlib.crc32(json.dumps(body, default=str, sort_keys=True).encode()))
        body = _lure(body, canary.url, rng.randrange(6))
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if rng.random() < 0.1:
            headers["Authorization"] = "Bearer sk-not-a-key"  # a wrong key: 401, never a tenant
        data = json.dumps(body, default=str).encode() if not isinstance(body, bytes) else body
        resp = session.post(url, data=data, headers={**headers, "Content-Type": "application/json"}, timeout=30)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        _check(resp, body)

    run()
    print(f"{mode.value}: statuses {sorted(seen.items())}")
    assert canary.connections == 0
    assert sum(seen.values()) >= EXAMPLES // 2
    if mode is GenerationMode.POSITIVE:
        assert seen.get(200, 0) > 0, seen  # valid requests do get answered
