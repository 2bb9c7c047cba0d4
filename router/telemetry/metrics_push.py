"""Pushing the metrics over OTLP (router.telemetry.otlp_metrics) every export interval, and once more at
shutdown, in a worker thread (the SDK's exporter is blocking)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping

from aiohttp import web
from opentelemetry.sdk.metrics.export import MetricExporter
from prometheus_client import CollectorRegistry

from router.telemetry.otlp_metrics import export_interval_s, to_metrics_data
from router.telemetry.tracing import resource_from_env

log = logging.getLogger(__name__)


class MetricsPush:
    def __init__(self, exporter: MetricExporter, registry: CollectorRegistry, env: Mapping[str, str]) -> None:
        self.exporter = exporter
        self.registry = registry
        self.resource = resource_from_env(env)
        self.interval_s = export_interval_s(env)
        self.start_ns = time.time_ns()

    async def push(self) -> None:
        data = to_metrics_data([self.registry], self.resource, self.start_ns, time.time_ns())
        result = await asyncio.to_thread(self.exporter.export, data)
        if result.name != "SUCCESS":
            log.warning("OTLP metrics export failed (%s); the next one sends the same totals", result.name)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.push()

    def cleanup_ctx(self) -> Callable[[web.Application], AsyncIterator[None]]:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(self.run(), name="otlp-metrics")
            log.info("metrics: pushing OTLP every %.1f s", self.interval_s)
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await self.push()  # the last totals
                await asyncio.to_thread(self.exporter.shutdown)

        return ctx
