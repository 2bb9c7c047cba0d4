"""Spans, trace propagation, metrics and the access log, as an SRE would read them."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from router.emulator.app import STATE as EMU
from tests.conftest import chat_body

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

Spans = tuple[TracerProvider, InMemorySpanExporter]


def by_name(spans: Spans) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans[1].get_finished_spans()}


async def test_server_span_continues_the_callers_trace(basic: dict[str, Any], spans: Spans) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body(), headers={"traceparent": TRACEPARENT})
    assert resp.status == 200
    got = by_name(spans)
    server = got["POST /v1/chat/completions"]
    assert server.kind == SpanKind.SERVER
    assert server.context is not None
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    attrs = server.attributes or {}
    assert attrs["router.route"] == "general"
    assert attrs["router.cluster"] == "pool"
    assert attrs["router.reason"] == "rule 'general': model 'auto' (default to the pool)"
    assert attrs["router.rule"] == "general"  # an SRE searches traces by the rule that matched
    assert attrs["router.policy"] == resp.headers["x-router-policy"]
    assert attrs["http.response.status_code"] == 200


async def test_internal_and_client_spans_follow_genai_conventions(basic: dict[str, Any], spans: Spans) -> None:
    await basic["client"].post("/v1/chat/completions", json=chat_body(max_tokens=4, temperature=0.5))
    got = by_name(spans)
    server = got["POST /v1/chat/completions"]
    assert server.context is not None
    for name in ("router.classify", "router.decide"):
        parent = got[name].parent
        assert got[name].kind == SpanKind.INTERNAL
        assert parent is not None
        assert parent.span_id == server.context.span_id
    client = got["chat small-model"]
    assert client.kind == SpanKind.CLIENT
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    attrs = client.attributes or {}
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "vllm"
    assert attrs["gen_ai.request.model"] == "small-model"
    assert attrs["gen_ai.response.model"] == "small-model"
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert isinstance(attrs["gen_ai.usage.input_tokens"], int)
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ("length",)
    assert attrs["gen_ai.request.max_tokens"] == 4
    assert attrs["server.address"] == "127.0.0.1"
    assert "error.type" not in attrs


async def test_traceparent_is_propagated_upstream_from_the_client_span(basic: dict[str, Any], spans: Spans) -> None:
    await basic["client"].post("/v1/chat/completions", json=chat_body(), headers={"traceparent": TRACEPARENT})
    sent = basic["pool"].app[EMU].last_headers["traceparent"]
    client = by_name(spans)["chat small-model"]
    assert client.context is not None
    assert sent == f"00-{TRACE_ID}-{client.context.span_id:016x}-01"


async def test_frontier_span_names_the_provider(basic: dict[str, Any], spans: Spans) -> None:
    await basic["client"].post("/v1/chat/completions", json=chat_body("frontier"))
    client = by_name(spans)["chat frontier-model"]  # litellm's provider prefix is not part of the model
    attrs = client.attributes or {}
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "frontier-model"
    assert attrs["gen_ai.response.model"] == "frontier-model"
    assert attrs["gen_ai.usage.output_tokens"] == 16
    # litellm forwards our headers: the frontier emulator sees the same trace.
    assert basic["frontier"].app[EMU].last_headers["traceparent"].split("-")[2] == f"{client.context.span_id:016x}"


async def test_failed_attempt_span_has_error_type(emulator: Any, proxy: Any, spans: Spans) -> None:
    from tests.conftest import BASIC_POLICY, url

    bad = await emulator(model="small-model", lora=["extract-lora"], failure_rate=1.0, failure_status=503)
    good = await emulator(model="backup-model")
    client = await proxy(BASIC_POLICY.format(pool=url(bad), backup=url(good), frontier=url(good), pool_limit=8))
    resp = await client.post("/v1/chat/completions", json=chat_body())
    assert resp.status == 200
    assert resp.headers["x-router-cluster"] == "backup"
    got = {s.name: s for s in spans[1].get_finished_spans()}
    failed = got["chat small-model"].attributes or {}
    assert failed["error.type"] == "http_503"
    # The span's status says what kind of failure, never the upstream's own text.
    assert got["chat small-model"].status.description == "http_503"
    # The pool's one replica was retried once (a 503 may pass), then the backup answered: attempt 3.
    assert (got["chat backup-model"].attributes or {})["router.attempt"] == 3


async def test_no_prompt_text_in_spans_unless_enabled(emulator: Any, proxy: Any, spans: Spans) -> None:
    from tests.conftest import BASIC_POLICY, url

    pool = await emulator(model="small-model", lora=["extract-lora"])
    policy = BASIC_POLICY.format(pool=url(pool), backup=url(pool), frontier=url(pool), pool_limit=8)
    client = await proxy(policy)
    await client.post("/v1/chat/completions", json=chat_body(content="secret-prompt-text"))
    dumped = repr([dict(s.attributes or {}) for s in spans[1].get_finished_spans()])
    assert "secret-prompt-text" not in dumped
    spans[1].clear()
    client = await proxy(policy, capture_content=True)
    await client.post("/v1/chat/completions", json=chat_body(content="secret-prompt-text"))
    attrs = {k: v for s in spans[1].get_finished_spans() for k, v in (s.attributes or {}).items()}
    assert "secret-prompt-text" in str(attrs["gen_ai.input.messages"])
    assert "emulated" in str(attrs["gen_ai.output.messages"])


async def test_prometheus_metrics(basic: dict[str, Any]) -> None:
    client = basic["client"]
    await client.post("/v1/chat/completions", json=chat_body())
    await client.post("/v1/chat/completions", json=chat_body(stream=True))
    await client.post("/v1/chat/completions", json=chat_body("nope"))
    resp = await client.get("/metrics")
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'router_requests_total{cluster="pool",route="general",status="200"} 2.0' in text
    assert 'router_requests_total{cluster="none",route="none",status="404"} 1.0' in text
    assert 'router_time_to_first_token_seconds_count{cluster="pool",route="general"} 1.0' in text
    assert "router_request_duration_seconds_bucket" in text
    assert "router_in_flight_requests 0.0" in text
    assert 'gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="vllm",' in text
    assert "gen_ai_client_operation_duration_seconds_bucket" in text
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_count" in text
    assert "router_policy_last_reload_success 1.0" in text


async def test_one_json_access_log_line_per_request(basic: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="router.access")
    await basic["client"].post("/v1/chat/completions", json=chat_body(content="do-not-log-me"))
    lines = [r.getMessage() for r in caplog.records if r.name == "router.access"]
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["status"] == 200
    assert entry["route"] == "general"
    assert entry["cluster"] == "pool"
    assert entry["output_tokens"] == 16
    assert entry["latency_ms"] > 0
    assert len(entry["request_id"]) == 32
    assert "do-not-log-me" not in lines[0]


async def test_server_spans_are_bounded_and_say_who_called(basic: dict[str, Any], spans: Spans) -> None:
    client = basic["client"]
    await client.post("/v1/chat/completions", json=chat_body(), headers={"User-Agent": "billing-svc/1.2"})
    for path in ("/v1/no-such-path", "/wp-admin/x.php", "/v1/chat/completions/extra"):
        assert (await client.get(path)).status == 404
    server = [s for s in spans[1].get_finished_spans() if s.kind == SpanKind.SERVER]
    # Every path under /v1/ is the API's (and traced); whatever it is, a path no route serves is `unmatched`.
    assert [s.name for s in server] == ["POST /v1/chat/completions"] + ["GET unmatched"] * 2
    ok = server[0].attributes or {}
    assert ok["http.route"] == "/v1/chat/completions"
    assert ok["url.scheme"] == "http"
    assert ok["server.address"] == "127.0.0.1"
    assert isinstance(ok["server.port"], int)
    assert ok["client.address"] == "127.0.0.1"
    assert ok["user_agent.original"] == "billing-svc/1.2"
    assert ok["router.route"] == "general"
    missing = server[1].attributes or {}
    assert missing["http.route"] == "unmatched"
    assert missing["url.path"] == "/v1/no-such-path"
    assert not [k for k in missing if k.startswith("router.") and k != "router.request_id"]  # nothing decided


async def test_a_streamed_attempt_says_when_its_first_chunk_came(basic: dict[str, Any], spans: Spans) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json={**chat_body(), "stream": True})
    await resp.read()
    attempt = by_name(spans)["chat small-model"].attributes or {}
    first_chunk = attempt["gen_ai.response.time_to_first_chunk"]
    assert isinstance(first_chunk, float)
    assert 0 < first_chunk < 5


async def test_metrics_have_no_created_series(basic: dict[str, Any]) -> None:
    await basic["client"].post("/v1/chat/completions", json=chat_body())
    text = await (await basic["client"].get("/metrics")).text()
    assert "router_requests_total" in text
    assert "_created" not in text


async def test_the_access_log_has_every_attempt_and_the_decision(
    emulator: Any, proxy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import BASIC_POLICY, url

    caplog.set_level(logging.INFO, logger="router.access")
    bad = await emulator(model="small-model", lora=["extract-lora"], failure_rate=1.0, failure_status=500)
    good = await emulator(model="backup-model")
    client = await proxy(BASIC_POLICY.format(pool=url(bad), backup=url(good), frontier=url(good), pool_limit=8))
    resp = await client.post("/v1/chat/completions", json=chat_body())
    assert resp.status == 200
    entry = orjson.loads([r.getMessage() for r in caplog.records if r.name == "router.access"][-1])
    assert entry["rule"] == "general"
    assert entry["policy"] == resp.headers["x-router-policy"]
    assert entry["cluster"] == "backup"
    tried = entry["tried"]
    assert [(t["cluster"], t["outcome"], t["error_type"]) for t in tried] == [
        ("pool", "error", "http_500"),
        ("pool", "error", "http_500"),
        ("backup", "success", None),
    ]
    assert tried[0]["endpoint"] == url(bad)
    assert tried[1]["retry"] is True
    assert all(t["ms"] > 0 for t in tried)


async def test_a_request_nobody_answered_is_counted_on_the_cluster_it_tried(
    emulator: Any, proxy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="router.access")
    slow = await emulator(model="m", latency_ms=2000)
    policy = f"""
version: 1
clusters:
  p: {{kind: vllm, endpoints: ["{url_of(slow)}"], model: m, timeouts: {{first_byte_s: 0.2, total_s: 1}},
      health_check: {{metrics_interval_s: 0}}}}
models:
  m: {{cluster: p}}
"""
    client = await proxy(policy)
    resp = await client.post("/v1/chat/completions", json=chat_body(model="m"))
    assert resp.status == 504
    metrics = await (await client.get("/metrics")).text()
    assert 'router_requests_total{cluster="p",route="model:m",status="504"} 1.0' in metrics
    # The access log says why, as the caller was told, and which field a rejected request got wrong.
    bad = await client.post("/v1/chat/completions", json={**chat_body(model="m"), "api_base": "http://evil"})
    assert bad.status == 400
    lines = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "router.access"]
    timeout, refused = lines[-2], lines[-1]
    assert timeout["error"] == (await resp.json())["error"]["message"]
    assert timeout["error_type"] == "upstream_timeout"
    assert (refused["error_param"], refused["error"]) == ("api_base", (await bad.json())["error"]["message"])


def url_of(server: Any) -> str:
    from tests.conftest import url

    return url(server)


async def test_a_recent_decision_can_be_looked_up_by_request_id(emulator: Any, proxy: Any) -> None:
    from tests.conftest import BASIC_POLICY, url

    bad = await emulator(model="small-model", lora=["extract-lora"], failure_rate=1.0, failure_status=500)
    good = await emulator(model="backup-model")
    policy = BASIC_POLICY.format(pool=url(bad), backup=url(good), frontier=url(good), pool_limit=8)
    client = await proxy(policy, decision_log=True)
    resp = await client.post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "req-4711"})
    assert resp.status == 200
    doc = await (await client.get("/v1/admin/decisions/req-4711")).json()
    assert doc["object"] == "router.decision"
    assert (doc["rule"], doc["route"], doc["cluster"], doc["status"]) == (
        "general",
        "general",
        "backup",
        200,
    )
    assert doc["targets"][0] == "pool"
    assert [(t["cluster"], t["outcome"]) for t in doc["tried"]] == [
        ("pool", "error"),
        ("pool", "error"),
        ("backup", "success"),
    ]
    assert doc["policy"] == resp.headers["x-router-policy"]
    assert "messages" not in doc  # content capture is off
    assert doc["model"] == "auto"  # what a replay needs
    assert doc["features"]["prompt_tokens"] > 0
    listed = await (await client.get("/v1/admin/decisions?limit=5")).json()
    assert [d["request_id"] for d in listed["data"]] == ["req-4711"]
    bad = await client.get("/v1/admin/decisions?limit=0")
    assert bad.status == 400
    assert (await bad.json())["error"]["param"] == "limit"
    missing = await client.get("/v1/admin/decisions/req-0000")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_without_the_decision_log_nothing_is_kept(basic: dict[str, Any]) -> None:
    resp = await basic["client"].post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "req-1"})
    assert resp.status == 200
    missing = await basic["client"].get("/v1/admin/decisions/req-1")
    assert missing.status == 404
    assert "ROUTER_DECISION_LOG was off" in (await missing.json())["error"]["message"]
