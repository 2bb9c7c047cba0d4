"""A request's walk over its chain of targets: what every walk of it has done so far (:class:`Tally`),
one walk's view (:class:`Walk`), and the error that says why no target answered (:func:`no_answer`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import trace

from router.api.chat import ChatRequest
from router.errors import InvalidRequest, NoUpstreamAvailable, UpstreamError, UpstreamRejected, UpstreamTimeout
from router.telemetry import names as n
from router.types import Decision, RequestOutcome, Target
from router.upstream import ordering
from router.upstream.cluster import ClusterRuntime
from router.upstream.limits import retry_after
from router.upstream.request import DEADLINE_HEADER
from router.upstream.upstreams import Upstreams


@dataclass
class Tally:
    """What the walk over a request's targets has done so far."""

    attempted: int = 0
    timeouts: int = 0
    failures: list[str] = field(default_factory=list)
    tried: set[tuple[str, str]] = field(default_factory=set)
    back_in: list[float] = field(default_factory=list)  # seconds until a skipped target may take requests
    down_only: bool = False  # some target was skipped only because health checks call its endpoints down
    deadline_hit: bool = False
    # Targets passed over only because the request carries vLLM-only fields, and targets passed over for
    # any other reason: if the first are all there were, the request itself is at fault (a 400).
    vllm_only_skips: int = 0
    other_skips: int = 0
    affinity: dict[str, bytes | None] = field(default_factory=dict)
    # A target's model refused the request as longer than its context: the models that did (no other
    # target serving one of them is tried), and the refusal, the client's answer if no model can take it.
    too_long: set[str] = field(default_factory=set)
    too_long_refusal: UpstreamRejected | None = None
    too_long_attempts: int = 0


@dataclass(frozen=True)
class Walk:
    """One walk over (part of) a request's chain: the request, the tally all its walks share, and this
    walk's own record of the request (a hedge's is a copy sharing the attempt list, kept if it answers)."""

    upstreams: Upstreams
    chat: ChatRequest
    headers: Mapping[str, str]
    decision: Decision
    chain: list[Target]
    deadline: float | None
    tally: Tally
    outcome: RequestOutcome
    panic: bool = False
    hedge: bool = False

    def first_token_s(self, target: Target) -> float | None:
        """A stream's limit on its first event on ``target``: the route's first-token target, except on
        the chain's last target (which keeps its cluster's own limits: better late than nothing)."""
        latency = self.decision.latency
        if target is self.chain[-1] or not self.chat.stream or latency is None:
            return None
        return latency.ttft_s


def hedge_started(delay: float, cluster: str) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(n.EVENT_HEDGED, {"after_ms": round(delay * 1000), "first_cluster": cluster})


def no_answer(chat: ChatRequest, decision: Decision, tally: Tally) -> Exception:
    detail = "; ".join(tally.failures) or "no targets"
    if tally.attempted == 0 and tally.vllm_only_skips and not tally.other_skips:
        fields = ", ".join(f"'{f}'" for f in chat.vllm_only)
        one = len(chat.vllm_only) == 1
        return InvalidRequest(
            f"{fields} {'is a vLLM extra' if one else 'are vLLM extras'}: this request is "
            f"routed to {decision.route!r}, whose targets are frontier APIs that do not take "
            f"{'it' if one else 'them'}. Leave {'it' if one else 'them'} "
            "out, or ask for a model served by a self-hosted pool.",
            param=chat.vllm_only[0],
        )
    if tally.deadline_hit:
        return UpstreamTimeout(f"The request's deadline ({DEADLINE_HEADER}) passed: {detail}")
    if tally.attempted == 0:
        wait = min(tally.back_in) if tally.back_in else 1.0
        return NoUpstreamAvailable(f"No upstream can take this request now: {detail}", retry_after_s=retry_after(wait))
    if tally.timeouts == tally.attempted:
        return UpstreamTimeout(f"Every upstream attempt timed out: {detail}")
    return UpstreamError(f"Every upstream attempt failed: {detail}")


def prediction(cluster: ClusterRuntime | None) -> ordering.Prediction:
    if cluster is None:
        return ordering.Prediction(None, None)
    now = time.monotonic()
    full = cluster.in_flight >= cluster.config.circuit_breaker.max_in_flight
    queue = (cluster.queue.ewma or 0.0) if full else 0.0
    return ordering.Prediction(cluster.ttft.p95(now), cluster.latency.p95(now), queue)
