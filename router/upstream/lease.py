"""A request's hold on one cluster (:class:`Lease`), and the values a cluster answers with: the endpoints
a request may try (:class:`Candidates`), the one chosen (:class:`Pick`, :class:`Step`), or why none
(:class:`Refusal`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.errors import AttemptFailed
from router.upstream.endpoints import Endpoint

if TYPE_CHECKING:
    from router.upstream.cluster import ClusterRuntime


@dataclass(frozen=True, slots=True)
class Candidates:
    endpoints: list[Endpoint]
    why: str = ""  # when there are none
    down_only: bool = False  # some are left out only because health checks call them down (panic may try)


@dataclass(frozen=True, slots=True)
class Pick:
    endpoint: Endpoint | None
    affinity: bool = False
    why_none: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a cluster takes no (further) attempt of a request. ``reason`` is the spill-over metric's label;
    ``public``, when set, is what the client hears instead of ``detail`` (the operator's business)."""

    reason: str
    detail: str
    public: str | None = None
    back_in: float | None = None  # seconds until it may take requests again (for Retry-After)
    down_only: bool = False  # refused only because health checks call its endpoints down


def transient(kind: str) -> bool:
    """Failures that may pass in a moment (a 429, a 5xx, a refused or reset connection); not a timeout
    (the same wait again) nor a 4xx the operator must fix (a wrong key, an unknown model)."""
    return kind in ("connect", "protocol", "http_429") or kind.startswith("http_5")


@dataclass(frozen=True, slots=True)
class Step:
    """The endpoint of a request's next attempt on a cluster."""

    endpoint: Endpoint
    retry: bool  # a second or later attempt on this cluster: it holds a retry slot until done()


@dataclass
class Lease:
    """A request's hold on one cluster, from admission to its last attempt: the in-flight slot (given back
    once, by :meth:`release`), the endpoints tried so far, and the retry slot of each attempt after the
    first. A stream that opens keeps the lease until its relay ends."""

    cluster: ClusterRuntime
    adapter: str | None
    tried: set[tuple[str, str]]
    panic: bool
    found: Candidates
    attempts: int = 0
    same: int = 0  # retries of an endpoint that had just failed
    _retrying: bool = False
    _released: bool = False

    def next(self, affinity: bytes | None) -> Step | Refusal:
        """The endpoint of the next attempt, or why there is none: every attempt used, no endpoint left,
        or the cluster's retry budget spent."""
        c = self.cluster
        if self.attempts >= c.max_attempts:
            return Refusal("failed", f"{c.max_attempts} attempt(s) failed")
        pick = c.pick(self.adapter, affinity, self.tried, self.panic, self.found if self.attempts == 0 else None)
        if pick.endpoint is None:
            return Refusal("no_endpoint", pick.why_none)
        # A retry is a second attempt on the same cluster (its retry budget); moving on to a fallback
        # cluster is failover, bounded by that cluster's own in-flight limit.
        retry = self.attempts > 0
        if retry:
            if not c.try_retry():
                return Refusal("retry_budget", f"retry budget spent ({c.retries} in flight)")
            self._retrying = True
        self.attempts += 1
        self.tried.add((c.name, pick.endpoint.url))
        return Step(pick.endpoint, retry)

    def untried_left(self) -> bool:
        """Whether another endpoint of the cluster may still take an attempt (tried first, at once)."""
        c = self.cluster
        return self.attempts < c.max_attempts and bool(c.candidates(self.adapter, self.tried, self.panic).endpoints)

    def again(self, endpoint: Endpoint, failure: AttemptFailed, deadline: float | None) -> float | None:
        """How long to wait before retrying ``endpoint``, which just failed with ``failure``; None when it
        may not be retried: the retries are used, the failure is a timeout, the upstream's ``Retry-After``
        is longer than the policy waits or than the deadline allows, or the endpoint is out for everyone."""
        c, policy = self.cluster, self.cluster.config.retry
        if self.same >= policy.same_endpoint or failure.timeout or not transient(failure.kind):
            return None
        if failure.retry_after_s:
            if failure.retry_after_s > policy.max_retry_after_s:
                return None
            wait = failure.retry_after_s + 0.01  # just past the hold it set on the endpoint
        else:
            cap = min(policy.backoff_max_ms, policy.backoff_base_ms * 2**self.same) / 1000
            wait = c.rng.uniform(0, cap)  # full jitter: retries from many requests do not arrive together
        now = c.clock()
        if deadline is not None and now + wait >= deadline:
            return None
        if not endpoint.available(now + wait):
            return None  # ejected or cooling down past the wait: other requests keep off it too
        return wait

    def retry_same(self, endpoint: Endpoint) -> Step | Refusal:
        """A retry of ``endpoint`` (after :meth:`again`'s wait), holding a retry slot like any retry."""
        c = self.cluster
        if not c.try_retry():
            return Refusal("retry_budget", f"retry budget spent ({c.retries} in flight)")
        self._retrying = True
        self.same += 1
        return Step(endpoint, retry=True)

    def done(self) -> None:
        """The attempt is over (answered or failed): give its retry slot back."""
        if self._retrying:
            self._retrying = False
            self.cluster.end_retry()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.cluster.release()
