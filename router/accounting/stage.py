"""The accounting stage of a request: prices, the budget reservation before the first attempt and its
settlement after the answer (the ledger and the response cache are its parts)::

    cache     deterministic requests (temperature 0 or a seed), exact match per tenant, when enabled
              (router.accounting.cache)
    reserve   before the first attempt: the request's most (prompt tokens, estimated high, plus its
              max_tokens, at the dearest price of its targets) against every budget that applies, in one
              atomic step; an exhausted budget denies (429) or downgrades to a self-hosted pool
    settle    after the answer: its real cost (usage x the answering cluster's prices) and baseline cost
              (the same usage on the reference model); the reservation is settled to it and the ledger
              counts it (router.accounting.ledger)

Every method takes the request's own ``serving`` (the policy, clusters and prices it started with): a
reload while it runs must not change its prices or drop its cluster from under it. Results are returned;
the pipeline writes them into the request's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from router.accounting import budgets, verify, windows
from router.accounting.cache import AnswerCache
from router.accounting.costs import Prices, nano
from router.accounting.ledger import FLUSH_S, Costed, Ledger
from router.accounting.tokens import TokenCounter
from router.api.chat import ChatRequest, content_text
from router.errors import BudgetExceeded, StateUnavailable
from router.serving import Serving
from router.state.base import Ids, Lease, StateStore
from router.telemetry.metrics import Metrics
from router.tenancy.auth import Principal
from router.types import Decision, Target, Usage
from router.upstream.limits import retry_after
from router.upstream.transport.base import StreamState

log = logging.getLogger(__name__)

CHARS_PER_TOKEN_RESERVED = 3  # a high estimate of prompt tokens (English runs ~4 characters a token)


REAP_S = 1.0  # how often each replica looks for expired leases
VERIFY_S = 30.0  # how often it reads the invariant into its gauges
LEASE_MARGIN_S = 60  # a lease outlives its request's own time limits by this much before it may be reaped


@dataclass(frozen=True)
class Reservation:
    lease: Lease
    day: str  # the UTC day it was made: the ledger counts the request there, as its daily budget does


def lease_seconds(serving: Serving, decision: Decision, deadline: float | None) -> float:
    """How long a request may hold its reservation: its caller's deadline, else the longest its targets'
    time limits allow (every attempt of every target), plus a margin. A request that outlives it is
    still settled exactly (the reaper freed its reservation; the settlement adds its use)."""
    if deadline is not None:
        return max(0.0, deadline - time.monotonic()) + LEASE_MARGIN_S
    total = 0.0
    for t in decision.targets:
        cfg = serving.policy.clusters.get(t.cluster)
        if cfg is not None:
            attempts = getattr(cfg, "max_attempts", 1) + cfg.retry.same_endpoint
            total += cfg.timeouts.total_s * attempts
    return total + LEASE_MARGIN_S


def reserved_completion_tokens(chat: ChatRequest, caps: Iterable[int]) -> int:
    """The most output the request can produce on any of its targets: the cap that is sent (the client's,
    else the largest of the targets' defaults, see Policy.output_cap) times the choices asked for."""
    return (chat.output_cap or max(caps, default=1)) * chat.choices


def reserved_prompt_tokens(chat: ChatRequest) -> int:
    chars = sum(len(str(m.content or "")) for m in chat.parsed.messages)
    return chars // CHARS_PER_TOKEN_RESERVED + 8 * len(chat.parsed.messages) + 8


class Accounting:
    def __init__(
        self, store: Callable[[], StateStore], metrics: Metrics, prefix: str, tokens: TokenCounter | None = None
    ) -> None:
        """``store``: read at each use (the app picks the store at start-up); ``prefix``: of every key it
        writes; ``tokens``: counts a stream's usage when the upstream sent none."""
        self.store = store
        self.metrics = metrics
        self.prefix = prefix
        self.tokens = tokens if tokens is not None else TokenCounter()
        self.ids = Ids()  # of this replica's leases and ledger batches
        self.ledger = Ledger(store, self.ids)
        self.cache = AnswerCache(store, metrics, prefix)
        self._settling: set[asyncio.Future[None]] = set()

    # -- prices ------------------------------------------------------------------------------
    @staticmethod
    def worst(serving: Serving, targets: tuple[Target, ...]) -> Prices:
        book = serving.prices.clusters
        out = Prices(0.0, 0.0)
        for t in targets:
            if t.cluster in book:
                out = out.worst(book[t.cluster])
        return out

    # -- budgets -----------------------------------------------------------------------------
    async def reserve(
        self,
        serving: Serving,
        principal: Principal,
        decision: Decision,
        chat: ChatRequest,
        deadline: float | None = None,
    ) -> tuple[Decision, Reservation | None]:
        """The reservation against every budget that applies (None: none does), and the decision it
        leaves: the same, or downgraded by an exhausted budget. Raises BudgetExceeded."""
        policy = serving.policy
        scoped = budgets.applicable(policy.budgets, principal.tenant, decision.route)
        if not scoped:
            return decision, None
        started = time.perf_counter()
        prompt = reserved_prompt_tokens(chat)
        uncapped: frozenset[str] = frozenset()
        metrics = self.metrics
        try:
            for _ in range(len(scoped) + 1):
                price = self.worst(serving, decision.targets)
                completion = reserved_completion_tokens(chat, (policy.output_cap(t.cluster) for t in decision.targets))
                ask = budgets.Ask(nano(prompt * price.input + completion * price.output), prompt + completion)
                now = time.time()
                counters = budgets.counters(scoped, ask, now, self.prefix, uncapped)
                lease_id, seq = self.ids.next()
                expires = int(now + lease_seconds(serving, decision, deadline)) + 1
                lease = Lease(lease_id, seq, tuple(counters), expires)
                result = await self.store().reserve(lease)
                if result.ok:
                    return decision, Reservation(lease, windows.day(now).label)
                assert result.exhausted is not None
                full = counters[result.exhausted]
                budget = next(s.budget for s in scoped if s.budget.name == full.budget)
                if budget.on_exhausted == "deny" or budget.downgrade_to is None:
                    metrics.budget_exhausted.labels(budget.name, "deny").inc()
                    raise BudgetExceeded(
                        budgets.describe(full, result.used) + f" It resets at {_when(full.resets_at)}.",
                        budget=budget.name,
                        retry_after_s=retry_after(full.resets_at - time.time()),
                    )
                metrics.budget_exhausted.labels(budget.name, "downgrade").inc()
                decision = self._downgrade(serving, decision, budget.name, budget.downgrade_to)
                uncapped |= {budget.name}
            raise AssertionError("unreachable: each pass uncaps one more budget")
        except StateUnavailable:
            metrics.budget_exhausted.labels("state_store", "unavailable").inc()
            raise
        finally:
            metrics.budget_check.observe(time.perf_counter() - started)

    def _downgrade(self, serving: Serving, decision: Decision, budget: str, cluster: str) -> Decision:
        cfg = serving.policy.clusters[cluster]
        adapter = decision.primary.adapter
        keep = cfg.serves_adapter(adapter)
        reason = f"{decision.reason}; budget {budget!r} exhausted: downgraded to {cluster!r}"
        return replace(decision, targets=(Target(cluster, keep),), reason=reason, latency=None)

    # -- after the answer --------------------------------------------------------------------
    async def settle(
        self,
        serving: Serving,
        principal: Principal,
        reservation: Reservation | None,
        route: str | None,
        cluster: str | None,
        usage: Usage | None,
        cache_hit: bool = False,
        tier: str | None = None,
    ) -> Costed | None:
        """Cost the answer and count it, or (``usage`` None: nobody answered) release the reservation."""
        cluster = cluster or "none"
        costed = None
        if usage is not None:
            book = serving.prices
            prices = None if cache_hit else book.of(cluster, tier)
            cost = prices.cost(usage) if prices is not None else 0.0
            costed = Costed(cost, book.baseline.cost(usage))
        if reservation is not None:
            tokens = usage.total_tokens if usage is not None else 0
            spent = budgets.Ask(nano(costed.cost_usd) if costed else 0, tokens)
            lease = reservation.lease
            finals = budgets.finals(lease.counters, spent, usage is not None)
            # Off the response's path: the answer does not wait for the store. Until it lands the lease
            # stands (a crash in between leaves it to be reaped when it expires: budgets err on the side
            # of the cap, never past it, and come back exact).
            task = asyncio.ensure_future(self._settle(lease, finals, usage is None))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        if usage is None or costed is None:
            return None
        route = route or "none"
        day = reservation.day if reservation is not None else None
        self.ledger.add(principal.tenant, route, cluster, usage, costed, cache_hit, day)
        self.metrics.record_cost(principal.tenant, route, cluster, costed.cost_usd, costed.baseline_usd)
        return costed

    async def _settle(self, lease: Lease, finals: list[budgets.Final], release: bool) -> None:
        try:
            await self.store().settle(lease, finals, release)
        except StateUnavailable:
            log.warning("could not settle lease %s (state store unavailable): it will be reaped", lease.id)

    async def stream_usage(self, chat: ChatRequest, st: StreamState) -> Usage:
        """A stream's usage: the upstream's final usage chunk, or counted (in a worker thread) from what was
        streamed."""
        if st.usage is not None:
            return st.usage
        prompt = [content_text(m.content) for m in chat.parsed.messages]
        return await self.tokens.usage(prompt, st.text())

    async def flush(self) -> None:
        """The ledger to the state store (every FLUSH_S, before a usage report, at exit), after the
        settlements still under way."""
        if self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)
        await self.ledger.flush()

    async def run(self) -> None:
        """The ledger flushed every FLUSH_S; expired leases (of any replica) reaped every REAP_S; the
        invariant's gauges read every VERIFY_S."""
        ticks = 0
        while True:
            await asyncio.sleep(FLUSH_S)
            ticks += 1
            await self.flush()
            if ticks % round(REAP_S / FLUSH_S) == 0:  # the gauges at the first reaping, then every VERIFY_S
                first = ticks == round(REAP_S / FLUSH_S)
                await self.maintain(time.time(), first or ticks % round(VERIFY_S / FLUSH_S) == 0)

    async def maintain(self, now: float, gauges: bool) -> None:
        """Reap expired leases; with ``gauges``, read the invariant into the metrics."""
        store = self.store()
        try:
            reaped = await store.reap(now)
            if reaped:
                self.metrics.budget_reaped.inc(reaped)
                log.warning("reaped %d expired budget lease(s): their requests ended without settling", reaped)
            if gauges:
                snapshot = await store.snapshot(now)
                for limit, diff in verify.differences(snapshot).items():
                    self.metrics.budget_difference.labels(limit).set(diff)
                self.metrics.budget_leases.labels("open").set(snapshot.open_leases)
                self.metrics.budget_leases.labels("expired").set(snapshot.expired_leases)
        except StateUnavailable:
            return


def _when(unix: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
