"""Traces and metrics reach a collector over OTLP/HTTP, configured only by the standard OTEL_* variables, at a
receiver of the test's own that decodes the protobuf (opentelemetry-proto).

Traces: two `router serve` replicas export to it. One caller trace (its `traceparent`) sends a request to
each replica; every request fails on its first cluster and fails over to the next. The receiver must see
one trace: the caller's span as the parent of both replicas' server spans, each with its classify and
decide spans and one client span per upstream attempt (the failed one marked so), the attempt's span id
reaching the upstream, and each replica named by its own service.instance.id.

Metrics: the same instruments as /metrics, pushed every OTEL_METRIC_EXPORT_INTERVAL, the GenAI ones under
their OpenTelemetry names and attributes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.integration.conftest import Spawn, free_port, wait_http

pytestmark = pytest.mark.integration

POLICY = """
version: 1
clusters:
  first:
    kind: vllm
    endpoints: ["http://127.0.0.1:{bad}/v1"]
    model: small-model
    health_check: {{metrics_interval_s: 0}}
    fallbacks: [second]
  second:
    kind: vllm
    endpoints: ["http://127.0.0.1:{good}/v1"]
    model: small-model
    health_check: {{metrics_interval_s: 0}}
models:
  auto: {{default_route: general}}
routes:
  - name: extraction
    match: {{models: [auto], tasks: [extraction]}}
    cluster: first
  - name: general
    target_only: true
    cluster: first
auth: {{anonymous: true}}
"""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Span]] = []  # (resource attributes, span)
        self.metrics: list[ExportMetricsServiceRequest] = []  # every metrics export, in order
        self.metrics_arrived = asyncio.Event()
        self.content_types: set[str] = set()
        self.both_servers = asyncio.Event()  # set once both replicas' server spans arrived

    async def traces(self, request: web.Request) -> web.Response:
        self.content_types.add(request.content_type)
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for rs in message.resource_spans:
            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                self.spans.extend((resource, span) for span in ss.spans)
        if sum(s.kind == Span.SPAN_KIND_SERVER for _, s in self.spans) >= 2:
            self.both_servers.set()
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    async def metrics_export(self, request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        self.metrics.append(message)
        self.metrics_arrived.set()
        return web.Response(
            body=ExportMetricsServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def start(self) -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/metrics", self.metrics_export)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, port


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None
    return out


async def test_one_trace_across_two_replicas_and_a_failover(spawn: Spawn, tmp_path: Path) -> None:
    receiver = Receiver()
    runner, otlp_port = await receiver.start()
    try:
        bad, good = free_port(), free_port()
        for port, extra in ((bad, ["--failure-rate", "1.0"]), (good, [])):
            proc = spawn("emulate", "--port", str(port), "--model", "small-model", *extra)
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/health", proc)
        policy = tmp_path / "traced.yaml"
        policy.write_text(POLICY.format(bad=bad, good=good))
        replicas = {"replica-a": free_port(), "replica-b": free_port()}
        procs = []
        for name, port in replicas.items():
            env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
                "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={name}",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_METRICS_EXPORTER": "none",
                "ROUTER_CLASSIFIER": "true",
            }
            procs.append((port, spawn("serve", "--policies", str(policy), "--port", str(port), env=env)))
        for port, proc in procs:
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/readyz", proc, 180)

        body = {"model": "auto", "messages": [{"role": "user", "content": "Extract the email: ann@x.org"}]}
        headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
        async with aiohttp.ClientSession() as session:
            for port in replicas.values():
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
                    assert r.headers["x-router-cluster"] == "second"
            async with session.get(f"http://127.0.0.1:{good}/emulator/last_request") as r:
                upstream_headers = (await r.json())["headers"]

        await asyncio.wait_for(receiver.both_servers.wait(), 20)
        await asyncio.sleep(0.5)  # the batch after the server spans' (the attempts end first; be safe)
        for _, proc in procs:
            proc.stop()  # flushes what is left in the batch processor
    finally:
        await runner.cleanup()

    assert receiver.content_types == {"application/x-protobuf"}
    spans = [(r, s) for r, s in receiver.spans if s.trace_id.hex() == TRACE_ID]
    assert len(spans) == len(receiver.spans), "every span belongs to the caller's trace"
    servers = [(r, s) for r, s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == 2
    assert {s.parent_span_id.hex() for _, s in servers} == {CALLER_SPAN}
    assert {r["service.instance.id"] for r, _ in servers} == set(replicas)
    assert {r["service.name"] for r, _ in servers} == {"hybrid-llm-router"}
    attempt_ids = set()
    for resource, server in servers:
        children = [s for r, s in spans if s.parent_span_id == server.span_id]
        names = [s.name for s in children]
        assert "router.classify" in names
        assert "router.decide" in names
        classify = next(s for s in children if s.name == "router.classify")
        assert attrs(classify)["router.task"] == "extraction"
        attempts = sorted(
            (s for s in children if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano
        )
        clusters = [attrs(a)["router.cluster"] for a in attempts]
        # The first cluster tried (and retried) and failing, then the failover answering.
        assert clusters[-1] == "second"
        assert set(clusters[:-1]) == {"first"}, names
        *failed, answered = attempts
        for f in failed:
            assert f.status.code == Status.STATUS_CODE_ERROR
            assert attrs(f)["error.type"] == "http_500"
        assert answered.status.code != Status.STATUS_CODE_ERROR
        ids = {a.span_id for a in attempts}
        assert {r["service.instance.id"] for r, s in spans if s.span_id in ids} == {resource["service.instance.id"]}
        attempt_ids.add(answered.span_id.hex())
    # The upstream got the answering attempt's span as its parent (the last request: replica-b's).
    assert upstream_headers["traceparent"].split("-")[1] == TRACE_ID
    assert upstream_headers["traceparent"].split("-")[2] in attempt_ids
    assert os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") is None  # the test process itself exports nothing


def points(message: ExportMetricsServiceRequest) -> dict[str, Any]:
    """Metric name -> its data (sum, gauge or histogram) in one export."""
    out: dict[str, Any] = {}
    for rm in message.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = getattr(m, m.WhichOneof("data"))
    return out


async def test_metrics_are_pushed_with_the_genai_names(spawn: Spawn, tmp_path: Path) -> None:
    receiver = Receiver()
    runner, otlp_port = await receiver.start()
    try:
        good = free_port()
        emu = spawn("emulate", "--port", str(good), "--model", "small-model", "--tokens-per-second", "200")
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{good}/health", emu)
        policy = tmp_path / "metered.yaml"
        policy.write_text(
            f'version: 1\nclusters:\n  p: {{kind: vllm, endpoints: ["http://127.0.0.1:{good}/v1"], model: small-model}}'
            "\nmodels:\n  m: {cluster: p}\nauth: {anonymous: true}\n"
        )
        port = free_port()
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=metered-1",
        }
        proc = spawn("serve", "--policies", str(policy), "--port", str(port), env=env)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/readyz", proc)
        async with aiohttp.ClientSession() as session:
            for stream in (False, False, True):
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
                async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as r:
                    assert r.status == 200
                    await r.read()
        receiver.metrics_arrived.clear()
        await asyncio.wait_for(receiver.metrics_arrived.wait(), 10)  # an export after the requests
        proc.stop()
    finally:
        await runner.cleanup()
    last = receiver.metrics[-1]
    resource = {a.key: a.value.string_value for a in last.resource_metrics[0].resource.attributes}
    assert resource["service.instance.id"] == "metered-1"
    assert resource["service.name"] == "hybrid-llm-router"
    data = points(last)
    requests = data["router_requests"]
    assert requests.is_monotonic
    assert sum(p.as_double for p in requests.data_points) == 3
    duration = data["gen_ai.client.operation.duration"]
    (h,) = duration.data_points
    attrs = {a.key: a.value.string_value for a in h.attributes}
    assert attrs["gen_ai.provider.name"] == "vllm"
    assert attrs["gen_ai.request.model"] == "small-model"
    assert h.count == 3
    assert sum(h.bucket_counts) == 3
    assert len(h.bucket_counts) == len(h.explicit_bounds) + 1
    assert data["gen_ai.client.operation.time_to_first_chunk"].data_points[0].count == 1
    assert "gen_ai.client.token.usage" in data
    assert not [name for name in data if name.endswith("_created")]
