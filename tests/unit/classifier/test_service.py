"""The serving-side classifier: micro-batching, the LRU cache, failures and timeouts (stand-in encoder)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from router.classifier.model import Heads, Matrix
from router.classifier.predict import ClassifierModel
from router.classifier.service import ClassifierRuntime
from router.classifier.text import prompt_view
from router.errors import ClassifierUnavailable
from router.policy.compile import compile_texts
from router.telemetry.metrics import Metrics

POLICY = compile_texts(
    [
        (
            "p.yaml",
            "version: 1\nclusters: {c: {kind: vllm, endpoints: ['http://x/v1'], model: m}}\n"
            "models: {auto: {default_route: r}}\nroutes: [{name: r, match: {tasks: [coding]}, cluster: c}]\n"
            "classifier: {tasks: {triage: {examples: [ticket one, ticket two, ticket three]}}}\n",
        )
    ],
    env={},
)


class FakeEncoder:
    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.delay_s = delay_s
        self.fail = fail
        self.threads: set[str] = set()

    def __call__(self, texts: list[str]) -> Matrix:
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("GPU fell off the bus")
        time.sleep(self.delay_s)
        self.batches.append(len(texts))
        v = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=384) for t in texts])
        out: Matrix = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        return out


@pytest.fixture
async def make() -> AsyncIterator[object]:
    runtimes: list[ClassifierRuntime] = []
    heads = Heads.load()

    def build(encoder: FakeEncoder, **kw: float) -> ClassifierRuntime:
        rt = ClassifierRuntime(ClassifierModel(encoder, heads), Metrics(), **kw)  # type: ignore[arg-type]
        rt.start()
        runtimes.append(rt)
        return rt

    yield build
    for rt in runtimes:
        await rt.stop()


def view(text: str) -> object:
    return prompt_view([{"role": "user", "content": text}])


async def test_concurrent_requests_share_forward_passes(make: object) -> None:
    enc = FakeEncoder(delay_s=0.01)
    rt = make(enc, batch=16, wait_ms=5)  # type: ignore[operator]
    results = await asyncio.gather(*(rt.classify(view(f"prompt {i}"), POLICY) for i in range(40)))
    assert len(results) == 40
    assert sum(enc.batches) == 40 + 3  # the requests, and once the policy's three custom-task examples
    assert len(enc.batches) <= 6  # 40 requests in a handful of passes, not 40
    assert max(enc.batches) <= 16
    assert enc.threads == {"classifier_0"}  # off the event loop, one worker thread
    assert rt.metrics.classifier_batch._sum.get() == 40


async def test_repeated_text_is_served_from_the_cache(make: object) -> None:
    enc = FakeEncoder()
    rt = make(enc, wait_ms=0)  # type: ignore[operator]
    first, cached_first = await rt.classify(view("same text"), POLICY)
    second, cached_second = await rt.classify(view("same text"), POLICY)
    assert (cached_first, cached_second) == (False, True)
    assert first == second
    assert sum(enc.batches) == 1 + 3


async def test_cache_is_bounded_lru(make: object) -> None:
    rt = make(FakeEncoder(), wait_ms=0, cache_size=2)  # type: ignore[operator]
    for t in ("a", "b", "a", "c"):
        await rt.classify(view(t), POLICY)
    assert (await rt.classify(view("a"), POLICY))[1]  # recently used: kept
    assert not (await rt.classify(view("b"), POLICY))[1]  # least recently used: evicted


async def test_encoder_failure_is_reported_not_raised_further(make: object) -> None:
    rt = make(FakeEncoder(fail=True), wait_ms=0)  # type: ignore[operator]
    with pytest.raises(ClassifierUnavailable) as info:
        await rt.classify(view("x"), POLICY)
    assert info.value.reason == "encoder"
    assert rt.failed is not None
    assert "GPU fell off the bus" in rt.failed
    assert rt.metrics.classifier_up._value.get() == 0


async def test_slow_classification_times_out(make: object) -> None:
    rt = make(FakeEncoder(delay_s=0.3), wait_ms=0, timeout_ms=50)  # type: ignore[operator]
    with pytest.raises(ClassifierUnavailable) as info:
        await rt.classify(view("x"), POLICY)
    assert info.value.reason == "timeout"


async def test_stopped_runtime_is_unavailable(make: object) -> None:
    rt = make(FakeEncoder())  # type: ignore[operator]
    await rt.stop()
    with pytest.raises(ClassifierUnavailable):
        await rt.classify(view("x"), POLICY)
