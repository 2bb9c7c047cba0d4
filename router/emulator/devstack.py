"""Emulated upstreams for the quick start (``router serve --emulate-missing``).

vLLM endpoints written as ``emulated`` and frontier clusters with no API key are served by
emulators started in this process on free loopback ports, and the log says so loudly. Production
deployments leave the flag off: an unconfigured cluster is then skipped, never faked.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.emulator.app import create_emulator
from router.emulator.config import EmulatorConfig
from router.policy.compile import Policy
from router.policy.schema import EMULATED, FrontierCluster, VllmCluster
from router.upstream.transport.frontier import import_litellm
from router.upstream.upstreams import EmulatedUpstreams, frontier_key

log = logging.getLogger(__name__)


@dataclass
class EmulatorFleet:
    """Emulators started in this process, reused across policy reloads, stopped at shutdown."""

    ttft_ms: float = 40.0
    tokens_per_second: float = 400.0
    runners: dict[tuple[str, int], tuple[web.AppRunner, str]] = field(default_factory=dict)

    async def _start(self, key: tuple[str, int], config: EmulatorConfig) -> str:
        if key in self.runners:
            return self.runners[key][1]
        runner = web.AppRunner(create_emulator(config), access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        url = f"http://127.0.0.1:{port}/v1"
        self.runners[key] = (runner, url)
        return url

    async def ensure(self, policy: Policy, env: Mapping[str, str]) -> EmulatedUpstreams:
        out = EmulatedUpstreams()
        litellm: Any = None
        for name, cfg in policy.clusters.items():
            if isinstance(cfg, VllmCluster):
                n = sum(e.url == EMULATED for e in cfg.endpoint_specs())
                for i in range(n):
                    conf = EmulatorConfig(
                        model=cfg.model,
                        lora=list(cfg.adapters),
                        ttft_ms=self.ttft_ms,
                        tokens_per_second=self.tokens_per_second,
                    )
                    out.vllm.setdefault(name, []).append(await self._start((name, i), conf))
                if n:
                    log.warning("cluster %s: %d endpoint(s) served by local EMULATORS (--emulate-missing)", name, n)
            elif isinstance(cfg, FrontierCluster):
                litellm = litellm or await asyncio.to_thread(import_litellm)  # seconds, the first time: off the loop
                if cfg.api_base is None and frontier_key(cfg, env, litellm) is None:
                    served = cfg.model.split("/", 1)[-1]
                    conf = EmulatorConfig(
                        model=served, ttft_ms=self.ttft_ms * 5, tokens_per_second=self.tokens_per_second / 4
                    )
                    out.frontier[name] = await self._start((name, 0), conf)
                    log.warning("cluster %s: no API key, served by a local EMULATOR (--emulate-missing)", name)
        return out

    async def stop(self) -> None:
        for runner, _ in self.runners.values():
            await runner.cleanup()
        self.runners.clear()
