"""Shared fixtures: emulated upstreams on real ports, proxies built by the real app factory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.classifier.predict import ClassifierModel
from router.emulator.app import create_emulator
from router.emulator.config import EmulatorConfig
from router.http.app import create_app
from router.settings import Settings
from tests.redis_servers import prefix, private_redis

__all__ = ["prefix", "private_redis"]  # fixtures for tests of shared state (tests/redis_servers.py)

EmulatorFactory = Callable[..., Awaitable[TestServer]]
ProxyFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

BASIC_POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: [{pool}]
    model: small-model
    adapters: [extract-lora]
    timeouts: {{connect_s: 1, first_byte_s: 2, total_s: 5}}
    circuit_breaker: {{max_in_flight: {pool_limit}}}
    fallbacks: [backup]
  backup:
    kind: vllm
    endpoints: [{backup}]
    model: backup-model
    timeouts: {{connect_s: 1, first_byte_s: 2, total_s: 5}}
  frontier:
    kind: frontier
    model: openai/frontier-model
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
    api_key_env: TEST_FRONTIER_KEY
    api_base: {frontier}
    timeouts: {{connect_s: 1, first_byte_s: 5, total_s: 10}}
auth: {{anonymous: true, admin_without_key: true}}
models:
  auto: {{default_route: general}}
  pinned: {{cluster: pool, fallbacks: []}}
  lora: {{cluster: pool, adapter: extract-lora}}
  frontier: {{cluster: frontier}}
routes:
  - name: tools
    match: {{models: [auto], has_tools: true}}
    cluster: frontier
  - name: general
    description: default to the pool
    match: {{models: [auto]}}
    cluster: pool
"""


def url(server: TestServer) -> str:
    return str(server.make_url("/v1"))


@pytest.fixture
async def emulator(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> EmulatorFactory:
    async def make(**config: Any) -> TestServer:
        server: TestServer = await aiohttp_server(create_emulator(EmulatorConfig(**config)))
        return server

    return make


@pytest.fixture(scope="session")
def classifier_model() -> ClassifierModel:
    """The real encoder and shipped heads, loaded once for the whole run (about 5 s)."""
    return ClassifierModel.load()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
async def proxy(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    tmp_path: Path,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> ProxyFactory:
    async def make(
        policy: str, model: ClassifierModel | None = None, env: dict[str, str] | None = None, **settings: Any
    ) -> TestClient[Any, Any]:
        """A proxy over ``policy``; classification only with a (shared, loaded) ``model``. Policies that say
        nothing of `auth` serve anonymous requests (tests of keys and tenants set their own)."""
        path = tmp_path / "policy.yaml"
        if "\nauth:" not in policy:
            policy += "\nauth: {anonymous: true, admin_without_key: true}\n"
        path.write_text(policy)
        values: dict[str, Any] = {"policies": path, "reload_interval_s": 0.2, "access_log": True, **settings}
        values.setdefault("classifier", model is not None)
        app = create_app(
            Settings(**values),
            env={"TEST_FRONTIER_KEY": "sk-test", **(env or {})},
            tracer_provider=spans[0],
            classifier_model=model,
        )
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def basic(emulator: EmulatorFactory, proxy: ProxyFactory) -> dict[str, Any]:
    """A proxy over a pool emulator, a backup emulator and a frontier emulator (through litellm)."""
    pool = await emulator(model="small-model", lora=["extract-lora"])
    backup = await emulator(model="backup-model")
    frontier = await emulator(model="frontier-model")
    client = await proxy(BASIC_POLICY.format(pool=url(pool), backup=url(backup), frontier=url(frontier), pool_limit=64))
    return {"client": client, "pool": pool, "backup": backup, "frontier": frontier}


async def single_pool(
    emulator: EmulatorFactory, proxy: ProxyFactory, pool_limit: int = 8, **config: Any
) -> tuple[TestServer, TestClient[Any, Any]]:
    """A proxy over BASIC_POLICY whose every cluster is one emulator configured with ``config``."""
    server = await emulator(model="small-model", lora=["extract-lora"], **config)
    u = url(server)
    client = await proxy(BASIC_POLICY.format(pool=u, backup=u, frontier=u, pool_limit=pool_limit))
    return server, client


class Canary:
    """A TCP listener that no request should ever reach: it counts connections and answers nothing."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Canary:
        async def seen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(seen, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    c = await Canary().start()
    yield c
    await c.stop()


def chat_body(model: str = "auto", content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}
