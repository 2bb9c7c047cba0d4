"""Taking a broken stream elsewhere, over in-process transports: a clean restart when nothing was sent, a
continuation (prefill) on a vLLM pool when something was, nothing for frontier-only chains, several
choices or tool calls."""

from __future__ import annotations

import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.pipeline.attempts import Attempts, OpenStream
from router.pipeline.failover import Failover
from router.pipeline.rescue import Rescue
from router.policy.compile import compile_texts
from router.telemetry.metrics import Metrics
from router.telemetry.tracing import build_tracing
from router.types import RequestOutcome, Target
from router.upstream.lease import Lease
from router.upstream.transport.base import UpstreamCall
from router.upstream.transport.mock import Events, MockTransport
from router.upstream.upstreams import Upstreams
from tests.unit.inproc import inproc_clusters

POLICY = """
version: 1
clusters:
  first: {kind: vllm, model: m1, endpoints: ["http://10.0.0.1:1/v1"], fallbacks: [second]}
  second: {kind: vllm, model: m2, endpoints: ["http://10.0.0.2:1/v1"], fallbacks: [api]}
  api: {kind: frontier, model: openai/m, price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
models:
  m: {cluster: first}
  a: {cluster: api}
"""
CHUNK = b'data: {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hello "}}]}\n\n'


class Upstream:
    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.prefills: list[bool] = []
        self.transport = MockTransport(self)

    async def __call__(self, call: UpstreamCall) -> Events:
        self.bodies.append(dict(call.body))
        self.prefills.append(call.prefill)
        return [CHUNK, b"data: [DONE]\n\n"]


async def _setup(alias: str, text: str = POLICY, **extra: object) -> tuple[Rescue, OpenStream, dict[str, Upstream]]:
    policy = compile_texts([("p.yaml", text)], env={})
    ups = {name: Upstream() for name in policy.clusters}
    upstreams = Upstreams(inproc_clusters(policy, {n: u.transport for n, u in ups.items()}))
    metrics = Metrics()
    attempts = Attempts(metrics, build_tracing({}))
    body = {"model": alias, "messages": [{"role": "user", "content": "hi"}], "stream": True, **extra}
    chat: ChatRequest = parse_chat_request(orjson.dumps(body))
    decision = policy.pinned[alias]
    outcome = RequestOutcome("r")
    cluster = upstreams.clusters[decision.primary.cluster]
    lease = await cluster.acquire(None, set(), False, None)
    assert isinstance(lease, Lease)
    opened = await attempts.attempt(chat, lease, cluster.endpoints[0], Target(cluster.name), outcome, None, False)
    assert isinstance(opened, OpenStream)
    rescue = Rescue(Failover(attempts, metrics), upstreams, chat, {}, decision, outcome, None, policy.limits)
    return rescue, opened, ups


async def test_nothing_sent_yet_restarts_on_the_next_target() -> None:
    rescue, broken, ups = await _setup("m")
    resumed = await rescue.resume(broken, "")
    assert resumed is not None
    assert resumed.how == "restarted"
    assert resumed.stream.cluster.name == "second"
    assert ups["second"].bodies[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_something_sent_is_continued_on_a_pool_with_the_partial_answer_as_prefill() -> None:
    rescue, broken, ups = await _setup("m")
    resumed = await rescue.resume(broken, "Hello ")
    assert resumed is not None
    assert resumed.how == "continued"
    sent = ups["second"].bodies[0]
    assert sent["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello "}]
    assert ups["second"].prefills == [True]  # the vLLM transport turns it into continue_final_message
    assert ups["api"].bodies == []


PROVIDERS = """
version: 1
clusters:
  gpt: {kind: frontier, model: openai/m, price: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}, fallbacks: [claude]}
  claude:
    kind: frontier
    model: anthropic/claude-x
    default_max_tokens: 64
    prefill: true
    price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
models:
  a: {cluster: gpt}
"""


async def test_a_provider_marked_for_prefill_may_continue_the_answer() -> None:
    rescue, broken, ups = await _setup("a", PROVIDERS)
    resumed = await rescue.resume(broken, "Hello ")
    assert resumed is not None
    assert resumed.stream.cluster.name == "claude"
    assert ups["claude"].prefills == [True]
    messages = ups["claude"].bodies[0]["messages"]
    assert isinstance(messages, list)
    assert messages[-1] == {"role": "assistant", "content": "Hello "}


async def test_no_continuation_where_it_could_repeat_or_garble_the_answer() -> None:
    rescue, broken, ups = await _setup("a")  # a frontier API: it may ignore the prefill and start over
    assert await rescue.resume(broken, "Hello ") is None
    rescue, broken, ups = await _setup("m", n=2)  # several choices
    assert await rescue.resume(broken, "Hello ") is None
    assert ups["second"].bodies == []
