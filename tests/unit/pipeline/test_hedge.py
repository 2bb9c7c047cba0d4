"""Hedged requests: the race between a slow first target and the rest of its chain (pure, with scripted
walks), then through failover over in-process transports (issue #14, part 3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import AttemptFailed, UpstreamRejected
from router.pipeline.attempts import Attempts, OpenStream
from router.pipeline.failover import Failover
from router.pipeline.hedge import Hedge, Raced, race
from router.policy.compile import compile_texts
from router.telemetry import names as n
from router.telemetry.metrics import Metrics
from router.telemetry.tracing import build_tracing
from router.types import Decision, RequestOutcome
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import Events, MockTransport
from router.upstream.upstreams import Upstreams
from tests.unit.inproc import inproc_clusters, settled


@dataclass
class Walks:
    """Two scripted walks: each sleeps, then answers (a string), fails (None) or raises; what happened to
    each is noted (cancelled, and with which message)."""

    first_s: float
    first: str | Exception | None
    rest_s: float = 0.0
    rest: str | Exception | None = "rest"
    budget: bool = True
    cancelled: dict[str, tuple[object, ...]] = field(default_factory=dict)
    rest_hedged: list[bool] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    ends: int = 0
    starts: int = 0

    def _walk(self, name: str, delay: float, result: str | Exception | None) -> Coroutine[Any, Any, str | None]:
        async def walk() -> str | None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError as exc:
                self.cancelled[name] = exc.args
                raise
            if isinstance(result, Exception):
                raise result
            return result

        return walk()

    def hedge(self) -> Hedge[str]:
        def rest(hedged: bool) -> Coroutine[Any, Any, str | None]:
            self.rest_hedged.append(hedged)
            return self._walk("rest", self.rest_s, self.rest)

        async def discard(answer: str) -> None:
            self.discarded.append(answer)

        def end() -> None:
            self.ends += 1

        def started() -> None:
            self.starts += 1

        return Hedge(
            lambda: self._walk("first", self.first_s, self.first), rest, lambda: self.budget, end, discard, started
        )


async def test_a_first_target_that_answers_in_time_is_never_hedged() -> None:
    walks = Walks(0.0, "first")
    assert await race(walks.hedge(), 0.2) == Raced("first", "first", None)
    assert walks.rest_hedged == []
    assert walks.starts == 0


async def test_a_first_target_that_fails_in_time_is_plain_failover() -> None:
    walks = Walks(0.0, None)
    assert await race(walks.hedge(), 0.2) == Raced("rest", "rest", None)
    assert walks.rest_hedged == [False]
    assert walks.starts == 0


async def test_a_slow_first_target_is_hedged_and_the_first_answer_kept_the_other_cancelled() -> None:
    walks = Walks(5.0, "first", rest_s=0.0)
    started = time.monotonic()
    assert await race(walks.hedge(), 0.05) == Raced("rest", "rest", "hedge")
    assert time.monotonic() - started < 1.0
    assert walks.rest_hedged == [True]
    assert (walks.starts, walks.ends) == (1, 1)
    assert walks.cancelled == {"first": (n.HEDGE_LOST,)}  # told why: not a client that went away


async def test_the_first_target_may_still_win_after_the_hedge_went_out() -> None:
    walks = Walks(0.1, "first", rest_s=5.0)
    assert await race(walks.hedge(), 0.05) == Raced("first", "first", "primary")
    assert walks.cancelled == {"rest": (n.HEDGE_LOST,)}


async def test_without_budget_no_hedge_goes_out() -> None:
    walks = Walks(0.1, None, budget=False)
    assert await race(walks.hedge(), 0.02) == Raced("rest", "rest", "budget")
    assert walks.rest_hedged == [False]
    assert (walks.starts, walks.ends) == (0, 0)


async def test_when_neither_answers_the_race_says_so_and_a_failed_hedge_waits_for_the_first() -> None:
    assert await race(Walks(0.05, None, rest=None).hedge(), 0.01) == Raced(None, None, "none")
    walks = Walks(0.1, "first", rest=None)  # the hedge fails at once: the first target is still awaited
    assert await race(walks.hedge(), 0.01) == Raced("first", "first", "primary")


async def test_the_requests_own_fault_ends_the_race_and_cancels_the_other() -> None:
    walks = Walks(5.0, "first", rest=ValueError("refused"))
    with pytest.raises(ValueError, match="refused"):
        await race(walks.hedge(), 0.01)
    assert "first" in walks.cancelled
    assert walks.ends == 1


async def test_answers_in_together_keep_the_first_targets_and_close_the_other() -> None:
    gate, discarded = asyncio.Event(), []

    async def walk(answer: str) -> str:
        await gate.wait()  # both wake in the same turn of the loop
        return answer

    async def discard(answer: str) -> None:
        discarded.append(answer)

    def rest(hedged: bool) -> Coroutine[Any, Any, str | None]:
        gate.set()
        return walk("rest")

    hedge = Hedge(lambda: walk("first"), rest, lambda: True, lambda: None, discard, lambda: None)
    assert await race(hedge, 0.0) == Raced("first", "first", "primary")
    assert discarded == ["rest"]  # the stream the hedge opened is closed, not leaked


async def test_a_client_that_goes_away_cancels_both_walks() -> None:
    walks = Walks(5.0, "first", rest_s=5.0)
    task = asyncio.create_task(race(walks.hedge(), 0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(walks.cancelled) == {"first", "rest"}
    assert walks.cancelled["first"] == ()  # not a hedge's loss: the client went away
    assert walks.ends == 1


POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints: ["http://10.0.0.1:1/v1"]
    circuit_breaker: {min_retry_concurrency: 1, max_retries: 1}
    fallbacks: [api]
  api:
    kind: frontier
    model: openai/m
    price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
models:
  pool: {cluster: pool, latency: {hedge_after_ms: 50}}
"""
POOL = Completion(b'{"choices": [], "model": "m"}', None, "m", ("stop",))
API = Completion(b'{"choices": [], "model": "openai/m"}', None, "openai/m", ("stop",))
EVENTS = [b'data: {"id": "c", "model": "m", "choices": []}\n\n', b"data: [DONE]\n\n"]


@dataclass
class Slow:
    """An upstream that waits ``seconds`` before it answers (or raises ``failure``)."""

    seconds: float
    answer: Completion
    failure: Exception | None = None
    calls: int = 0

    async def __call__(self, call: UpstreamCall) -> Completion | Events:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        if self.failure is not None:
            raise self.failure
        return EVENTS if call.stream else self.answer


def _setup(pool: Slow, api: Slow) -> tuple[Failover, Upstreams, Decision, Metrics]:
    policy = compile_texts([("p.yaml", POLICY)], env={})
    metrics = Metrics()
    upstreams = Upstreams(inproc_clusters(policy, {"pool": MockTransport(pool), "api": MockTransport(api)}))
    return Failover(Attempts(metrics, build_tracing({})), metrics), upstreams, policy.pinned["pool"], metrics


def _chat(stream: bool = False) -> ChatRequest:
    body = {"model": "pool", "messages": [{"role": "user", "content": "x"}], "stream": stream}
    return parse_chat_request(orjson.dumps(body))


def _count(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_slow_pool_is_hedged_onto_its_fallback_and_the_pool_is_not_blamed() -> None:
    failover, upstreams, decision, metrics = _setup(Slow(2.0, POOL), Slow(0.0, API))
    outcome = RequestOutcome("r")
    started = time.monotonic()
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is API
    assert time.monotonic() - started < 0.5  # the hedge's delay, not the pool's two seconds
    assert (outcome.cluster, outcome.upstream_model, outcome.hedge) == ("api", "openai/m", "hedge")
    pool_try, api_try = outcome.attempts
    assert (pool_try.outcome, pool_try.error_type) == ("cancelled", n.HEDGE_LOST)
    assert api_try.hedge
    assert api_try.outcome == "success"
    endpoint = upstreams.clusters["pool"].endpoints[0]
    assert endpoint.outlier.consecutive == 0
    assert endpoint.available(time.monotonic())
    assert _count(metrics, "router_hedges_total", route=decision.route, outcome="hedge") == 1
    assert _count(metrics, "router_upstream_attempts_total", cluster="pool", outcome="cancelled") == 1
    assert _count(metrics, "router_upstream_errors_total", cluster="pool", error_type=n.HEDGE_LOST) == 0
    assert _count(metrics, "router_failovers_total", from_cluster="pool", cluster="api") == 0  # not a failover
    settled(upstreams)


async def test_a_pool_that_answers_before_the_hedge_delay_is_all_that_is_called() -> None:
    api = Slow(0.0, API)
    failover, upstreams, decision, _metrics = _setup(Slow(0.0, POOL), api)
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is POOL
    assert (api.calls, outcome.hedge, outcome.cluster) == (0, None, "pool")
    settled(upstreams)


async def test_a_slow_pool_that_still_answers_first_keeps_its_answer() -> None:
    failover, upstreams, decision, _metrics = _setup(Slow(0.1, POOL), Slow(1.0, API))
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is POOL
    assert (outcome.cluster, outcome.upstream_model, outcome.hedge) == ("pool", "m", "primary")
    assert outcome.attempts[1].hedge
    assert outcome.attempts[1].error_type == n.HEDGE_LOST
    settled(upstreams)


async def test_a_hedged_stream_keeps_the_first_stream_and_closes_the_other() -> None:
    failover, upstreams, decision, _ = _setup(Slow(2.0, POOL), Slow(0.0, API))
    outcome = RequestOutcome("r")
    opened = await failover.run(upstreams, _chat(stream=True), {}, decision, outcome, None)
    assert isinstance(opened, OpenStream)
    assert opened.cluster.name == "api"
    assert upstreams.clusters["api"].in_flight == 1
    assert upstreams.clusters["pool"].in_flight == 0
    opened.endpoint.in_flight -= 1
    opened.lease.release()
    settled(upstreams)


async def test_a_spent_retry_budget_sends_no_hedge() -> None:
    api = Slow(0.0, API)
    failover, upstreams, decision, metrics = _setup(Slow(0.15, POOL), api)
    pool = upstreams.clusters["pool"]
    assert pool.try_retry()  # another request holds the pool's one retry slot
    outcome = RequestOutcome("r")
    assert await failover.run(upstreams, _chat(), {}, decision, outcome, None) is POOL
    assert (api.calls, outcome.hedge) == (0, "budget")
    assert _count(metrics, "router_hedges_total", route=decision.route, outcome="budget") == 1
    pool.end_retry()
    settled(upstreams)


async def test_a_rejection_from_the_hedge_is_the_clients_answer_and_stops_the_pool() -> None:
    refused = UpstreamRejected(400, {"error": {"message": "flagged by the content filter", "code": "content_filter"}})
    failover, upstreams, decision, _ = _setup(Slow(2.0, POOL), Slow(0.0, API, refused))
    with pytest.raises(UpstreamRejected):
        await failover.run(upstreams, _chat(), {}, decision, RequestOutcome("r"), None)
    settled(upstreams)


async def test_both_failing_is_one_error_that_names_both() -> None:
    broken = AttemptFailed("boom", kind="http_500", retriable=True)
    failover, upstreams, decision, _metrics = _setup(Slow(0.1, POOL, broken), Slow(0.1, API, broken))
    outcome = RequestOutcome("r")
    with pytest.raises(Exception, match=r"pool.*api|api.*pool"):
        await failover.run(upstreams, _chat(), {}, decision, outcome, None)
    settled(upstreams)
