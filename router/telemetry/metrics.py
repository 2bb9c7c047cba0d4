"""Prometheus metrics, in a registry owned by the app (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from router.telemetry import names as n
from router.telemetry.economics import EconomicsGauges
from router.telemetry.gauges import ClusterGauges, LiveGauges
from router.telemetry.genai import TTFT_BUCKETS, genai_histograms
from router.types import Usage

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)

CONTENT_TYPE = CONTENT_TYPE_LATEST
CLASSIFIER_ERROR_REASONS = ("encoder", "timeout", "unavailable")
# Error types of attempts cut short by the router itself (the client went away; a hedge answered first).
CANCELLED = frozenset({n.CLIENT_DISCONNECTED, n.HEDGE_LOST})


class Metrics:
    """The router's Prometheus instruments. One instance per app, with its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Long on purpose: one declaration per instrument, a catalogue in the order of docs/telemetry.md
        # (names in router.telemetry.names); there is no logic here to split.
        # No `_created` series beside every counter and histogram (a fifth of the page, read by nobody:
        # Prometheus has no use for them). A setting of the library, for the whole process.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            n.M_REQUESTS,
            "Chat requests answered, by route, cluster and HTTP status.",
            ("route", "cluster", "status"),
            registry=r,
        )
        self.duration = Histogram(
            n.M_REQUEST_DURATION,
            "Time from request to the last response byte.",
            ("route", "cluster", "stream"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            n.M_TTFT,
            "Time from request to the first streamed content byte.",
            ("route", "cluster"),
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(n.M_IN_FLIGHT, "Chat requests being served now.", registry=r)
        self._live = LiveGauges()
        r.register(self._live)
        self.economics = EconomicsGauges()
        r.register(self.economics)
        self.ejections = Counter(
            n.M_EJECTIONS,
            "Endpoints ejected (outlier detection) or put in cooldown, by reason (the failure that did it).",
            ("cluster", "endpoint", "reason"),
            registry=r,
        )
        self.retries = Counter(
            n.M_RETRIES,
            "Retries sent to a cluster, by the error of the attempt before.",
            ("cluster", "reason"),
            registry=r,
        )
        self.failovers = Counter(
            n.M_FAILOVERS,
            "Requests that moved on to a fallback cluster after a failed attempt, by from and to cluster.",
            ("from_cluster", "cluster"),
            registry=r,
        )
        self.hedges = Counter(
            n.M_HEDGES,
            "Requests whose first target was slower than the route's hedge_after_ms, by route and outcome: "
            "primary or hedge (whose answer was kept), none (neither answered), budget (no hedge was sent: "
            "the first cluster's retry budget was spent).",
            ("route", "outcome"),
            registry=r,
        )
        self.stream_rescues = Counter(
            n.M_STREAM_RESCUES,
            "Streams that broke after their first byte, by the cluster they broke on and what followed: "
            "continued (the answer went on elsewhere), restarted (nothing had been sent), failed.",
            ("cluster", "how"),
            registry=r,
        )
        self.spillovers = Counter(
            n.M_SPILLOVERS,
            "Requests that moved on from a target to the next (full, pending_full, pending_timeout, no_endpoint, "
            "unavailable, retry_budget, over_budget, failed).",
            ("cluster", "reason"),
            registry=r,
        )
        self.breaker_rejections = Counter(
            n.M_BREAKER_REJECTIONS,
            "Requests a cluster's circuit breaker turned away, by limit (in_flight, pending, retries).",
            ("cluster", "limit"),
            registry=r,
        )
        self.upstream_errors = Counter(
            n.M_UPSTREAM_ERRORS,
            "Failed upstream attempts, by cluster and error type.",
            ("cluster", "error_type"),
            registry=r,
        )
        self.attempts = Counter(
            n.M_UPSTREAM_ATTEMPTS,
            "Upstream attempts, by cluster and outcome (success, error, cancelled).",
            ("cluster", "outcome"),
            registry=r,
        )
        self.tokens = Counter(
            n.M_TOKENS, "Tokens, by route, cluster and type (input/output).", ("route", "cluster", "type"), registry=r
        )
        self.policy_reloads = Counter(
            n.M_POLICY_RELOADS, "Policy reload attempts, by result (success/failure).", ("result",), registry=r
        )
        self.policy_ok = Gauge(
            n.M_POLICY_LAST_RELOAD_OK, "1 if the last policy (re)load succeeded, 0 if it was rejected.", registry=r
        )
        self.policy_loaded_at = Gauge(n.M_POLICY_LOADED_AT, "Unix time the serving policy was loaded.", registry=r)
        self.policy_info = Gauge(
            n.M_POLICY_INFO,
            "1 for the digest of the policy being served (replicas that differ disagree).",
            ("digest",),
            registry=r,
        )
        self.cost = Counter(
            n.M_COST,
            "Dollars spent, by tenant, route and the cluster that answered.",
            ("tenant", "route", "cluster"),
            registry=r,
        )
        self.baseline_cost = Counter(
            n.M_BASELINE_COST,
            "Dollars the same tokens would have cost on the baseline model.",
            ("tenant", "route"),
            registry=r,
        )
        self.savings = Counter(n.M_SAVINGS, "Baseline cost minus cost.", ("tenant", "route"), registry=r)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.budget_exhausted = Counter(
            n.M_BUDGET_EXHAUSTED,
            "Requests a budget had no room for, by budget and action (deny, downgrade; unavailable: state store).",
            ("budget", "action"),
            registry=r,
        )
        self.budget_check = Histogram(
            n.M_BUDGET_CHECK,
            "Time to reserve a request against its budgets (one state-store round trip, or two on a downgrade).",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5),
            registry=r,
        )
        self.budget_difference = Gauge(
            n.M_BUDGET_DIFFERENCE,
            "Sum over live budget counters of |counter - settled use - open leases|, by limit (nano-dollars, "
            "tokens or requests): 0 when every counter is explained; anything else is a bug to report "
            "(`router usage --verify` names the counter and the cause).",
            ("limit",),
            registry=r,
        )
        self.budget_leases = Gauge(
            n.M_BUDGET_LEASES,
            "Budget reservations not yet settled, by state: open, or expired (waiting for a replica to reap).",
            ("state",),
            registry=r,
        )
        for state in ("open", "expired"):
            self.budget_leases.labels(state)
        self.budget_reaped = Counter(
            n.M_BUDGET_REAPED,
            "Budget reservations this replica closed because they expired unsettled (a request that ended "
            "without settling: a crashed replica, or a stall of the state store).",
            registry=r,
        )
        self.budget_local = Counter(
            n.M_BUDGET_LOCAL,
            "Budget reservations this replica granted from its own memory while the state store was away "
            "(fail-open budgets only; replayed to Redis when it is back). Always 0 for fail-closed budgets.",
            registry=r,
        )
        self.state_up = Gauge(n.M_STATE_UP, "1 while the shared state store (Redis) answers.", registry=r)
        self.state_up.set(1)
        self.state_errors = Counter(n.M_STATE_ERRORS, "State store operations that failed.", registry=r)
        self.cache_lookups = Counter(n.M_CACHE, "Response cache lookups, by result.", ("result",), registry=r)
        self.auth_failures = Counter(
            n.M_AUTH_FAILURES, "Requests refused by authentication, by code.", ("code",), registry=r
        )
        self.classifications = Counter(
            n.M_CLASSIFICATIONS,
            "Requests classified, by task label and source (head: trained head, custom: policy examples).",
            ("task", "source"),
            registry=r,
        )
        self.classify_duration = Histogram(
            n.M_CLASSIFY_DURATION,
            "Time a request spent being classified (queueing, batching, encoding, heads).",
            buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.classifier_batch = Histogram(
            n.M_CLASSIFIER_BATCH,
            "Texts per encoder forward pass (micro-batching).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.classifier_cache = Counter(
            n.M_CLASSIFIER_CACHE, "Embedding cache lookups, by result (hit/miss).", ("result",), registry=r
        )
        self.classifier_errors = Counter(
            n.M_CLASSIFIER_ERRORS,
            "Requests routed without classification because the classifier failed, by reason.",
            ("reason",),
            registry=r,
        )
        for reason in CLASSIFIER_ERROR_REASONS:  # a known, bounded set: 0 rather than absent, for alert ratios
            self.classifier_errors.labels(reason)
        self.classifier_up = Gauge(
            n.M_CLASSIFIER_UP, "1 if the encoder and heads are loaded and the last batch succeeded.", registry=r
        )
        self.genai_tokens, self.genai_duration, self.genai_ttfc = genai_histograms(r)

    def policy_loaded(self, digest: str, at: float) -> None:
        """A policy was (re)loaded and is now served."""
        self.policy_ok.set(1)
        self.policy_loaded_at.set(at)
        self.policy_info.clear()
        self.policy_info.labels(digest).set(1)

    def watch_clusters(self, read: Callable[[], Sequence[ClusterGauges]]) -> None:
        """Where the live cluster gauges come from (read at each scrape)."""
        self._live.read = read

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: the lookup costs more than the increment, and the label
        sets (routes, clusters, tenants, statuses) are few."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def record_request(
        self, route: str, cluster: str, status: int, stream: bool, seconds: float, ttft: float | None, usage: Usage
    ) -> None:
        self._child(self.requests, route, cluster, str(status)).inc()
        self._child(self.duration, route, cluster, "true" if stream else "false").observe(seconds)
        if ttft is not None:
            self._child(self.ttft, route, cluster).observe(ttft)
        if usage.input_tokens:
            self._child(self.tokens, route, cluster, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            self._child(self.tokens, route, cluster, "output").inc(usage.output_tokens)

    def record_attempt(
        self,
        provider: str,
        model: str,
        cluster: str,
        seconds: float,
        error_type: str | None,
        usage: Usage | None,
        ttfc: float | None,
    ) -> None:
        labels = ("chat", provider, model, cluster)
        # A cancelled attempt (the client went away, or a hedge answered first) is nobody's error.
        cancelled = error_type in CANCELLED
        verdict = "cancelled" if cancelled else "error" if error_type else "success"
        self._child(self.attempts, cluster, verdict).inc()
        self._child(self.genai_duration, *labels, error_type or "").observe(seconds)
        if error_type and not cancelled:
            self._child(self.upstream_errors, cluster, error_type).inc()
        if usage is not None:
            self._child(self.genai_tokens, *labels, "input").observe(usage.input_tokens)
            self._child(self.genai_tokens, *labels, "output").observe(usage.output_tokens)
        if ttfc is not None:
            self._child(self.genai_ttfc, *labels).observe(ttfc)

    def record_cost(self, tenant: str, route: str, cluster: str, cost: float, baseline: float) -> None:
        if cost:
            self._child(self.cost, tenant, route, cluster).inc(cost)
        if baseline:
            self._child(self.baseline_cost, tenant, route).inc(baseline)
        if baseline - cost > 0:
            self._child(self.savings, tenant, route).inc(baseline - cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)
