"""Routing by task through the app, with the real encoder and shipped heads; explain; encoder failure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.classifier.model import Matrix
from router.classifier.predict import ClassifierModel
from tests.conftest import EmulatorFactory, ProxyFactory, chat_body, url

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: [{pool}]
    model: small-model
    adapters: [extract-lora]
    timeouts: {{connect_s: 1, first_byte_s: 2, total_s: 5}}
  frontier:
    kind: frontier
    model: openai/frontier-model
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
    api_key_env: TEST_FRONTIER_KEY
    api_base: {frontier}
auth: {{anonymous: true, admin_without_key: true}}
models:
  auto: {{default_route: general}}
  small: {{cluster: pool}}
classifier:
  min_confidence: 0.5
  low_confidence_route: unsure
routes:
  - name: general
    target_only: true
    cluster: pool
  - name: unsure
    target_only: true
    cluster: frontier
  - name: hard
    match: {{tasks: [coding, math]}}
    cluster: frontier
  - name: extraction
    match: {{tasks: [extraction]}}
    cluster: pool
    adapter: extract-lora
"""

EXTRACT = "Extract every date and amount from this invoice email: invoice INV-7 for $310 is due on 4 May 2025."
CODE = "Write a Python function that parses an ISO 8601 date string and returns a datetime, with unit tests."


@pytest.fixture
async def stack(emulator: EmulatorFactory, proxy: ProxyFactory, classifier_model: ClassifierModel) -> dict[str, Any]:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    frontier = await emulator(model="frontier-model")
    client = await proxy(POLICY.format(pool=url(pool), frontier=url(frontier)), model=classifier_model)
    return {"client": client}


async def test_requests_route_by_their_task(stack: dict[str, Any]) -> None:
    client = stack["client"]
    resp = await client.post("/v1/chat/completions", json=chat_body(content=EXTRACT))
    assert resp.status == 200
    assert (resp.headers["x-router-route"], resp.headers["x-router-task"]) == ("extraction", "extraction")
    assert resp.headers["x-router-upstream-model"] == "extract-lora"
    resp = await client.post("/v1/chat/completions", json=chat_body(content=CODE, stream=True))
    assert resp.status == 200
    assert (resp.headers["x-router-route"], resp.headers["x-router-cluster"]) == ("hard", "frontier")
    await resp.read()
    metrics = await (await client.get("/metrics")).text()
    assert 'router_classifications_total{source="head",task="extraction"} 1.0' in metrics
    assert "router_classify_duration_seconds_count 2.0" in metrics


async def test_pinned_aliases_are_not_classified(stack: dict[str, Any]) -> None:
    client = stack["client"]
    resp = await client.post("/v1/chat/completions", json=chat_body("small", content=CODE))
    assert resp.status == 200
    assert "x-router-task" not in resp.headers
    metrics = await (await client.get("/metrics")).text()
    assert "router_classifications_total{" not in metrics


async def test_explain_returns_the_whole_trace_without_calling_upstream(stack: dict[str, Any]) -> None:
    client = stack["client"]
    resp = await client.post("/v1/route/explain", json=chat_body(content=EXTRACT))
    assert resp.status == 200
    doc = await resp.json()
    assert doc["classifier"]["status"] == "classified"
    assert doc["classifier"]["task"] == "extraction"
    assert doc["classifier"]["top"][0]["label"] == "extraction"
    assert len(doc["classifier"]["top"]) == 3
    assert 0 <= doc["classifier"]["complexity"] <= 1
    assert [(r["route"], r["matched"]) for r in doc["rules"]] == [("hard", False), ("extraction", True)]
    assert doc["rules"][0]["why"].startswith("task extraction not in")
    assert doc["decision"] == {
        "route": "extraction",
        "reason": doc["decision"]["reason"],
        "cluster": "pool",
        "adapter": "extract-lora",
        "fallbacks": [],
    }
    assert doc["decision"]["reason"].startswith("rule 'extraction': task extraction (")
    metrics = await (await client.get("/metrics")).text()
    assert "router_upstream_attempts_total{" not in metrics


async def test_explain_rejects_a_bad_body_like_chat_does(stack: dict[str, Any]) -> None:
    client = stack["client"]
    resp = await client.post("/v1/route/explain", json={"model": "auto", "messages": []})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "messages"
    resp = await client.post("/v1/route/explain", json=chat_body("nope"))
    assert resp.status == 404


class BrokenEncoder:
    def __call__(self, texts: list[str]) -> Matrix:
        raise RuntimeError("CUDA error: device lost")


async def test_encoder_failure_falls_back_to_rules_and_shows(
    emulator: EmulatorFactory,
    proxy: ProxyFactory,
    classifier_model: ClassifierModel,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    frontier = await emulator(model="frontier-model")
    broken = ClassifierModel(BrokenEncoder(), classifier_model.heads)
    client = await proxy(POLICY.format(pool=url(pool), frontier=url(frontier)), model=broken)
    resp = await client.post("/v1/chat/completions", json=chat_body(content=CODE))
    assert resp.status == 200  # still answered: by the alias default, without classification
    assert (resp.headers["x-router-route"], resp.headers["x-router-cluster"]) == ("general", "pool")
    metrics = await (await client.get("/metrics")).text()
    assert 'router_classifier_errors_total{reason="encoder"} 1.0' in metrics
    assert "router_classifier_up 0.0" in metrics
    classify = next(s for s in spans[1].get_finished_spans() if s.name == "router.classify")
    assert classify.attributes is not None
    assert classify.attributes["router.classifier"] == "failed"
    assert "device lost" in str(classify.attributes["router.classifier.error"])
    ready = await (await client.get("/readyz")).json()
    assert ready["classifier"]["status"] == "failed"


async def test_the_classifier_can_be_turned_off(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    client = await proxy(POLICY.format(pool=url(pool), frontier=url(pool)))
    resp = await client.post("/v1/chat/completions", json=chat_body(content=CODE))
    assert resp.headers["x-router-route"] == "general"
    ready = await (await client.get("/readyz")).json()
    assert ready["classifier"]["status"] == "disabled"


PINNED_ONLY = """
version: 1
clusters:
  pool: {{kind: vllm, endpoints: [{pool}], model: small-model}}
models:
  small: {{cluster: pool}}
"""


async def test_the_encoder_loads_only_when_the_policy_can_use_it(
    emulator: EmulatorFactory, proxy: ProxyFactory, classifier_model: ClassifierModel, tmp_path: Path
) -> None:
    pool = await emulator(model="small-model", lora=["extract-lora"])
    client = await proxy(PINNED_ONLY.format(pool=url(pool)), model=classifier_model)
    ready = await (await client.get("/readyz")).json()
    assert ready["classifier"]["status"] == "disabled"  # no task rule: the encoder is not loaded
    # A reload that brings the first task rule starts the classifier without a restart.
    (tmp_path / "policy.yaml").write_text(POLICY.format(pool=url(pool), frontier=url(pool)))
    for _ in range(100):
        ready = await (await client.get("/readyz")).json()
        if ready["classifier"]["status"] == "ready":
            break
        await asyncio.sleep(0.05)
    assert ready["classifier"]["status"] == "ready"
    resp = await client.post("/v1/chat/completions", json=chat_body(content=EXTRACT))
    assert resp.headers["x-router-route"] == "extraction"
