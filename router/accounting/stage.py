"""Budgets, costs, the ledger and the response cache around one request (the pipeline calls these).

::

    reserve   before the first attempt: the request's most (prompt tokens, estimated high, plus its
              max_tokens, at the dearest price of its targets) against every budget that applies, in one
              atomic step; an exhausted budget denies (429) or downgrades to a self-hosted pool
    settle    after the answer: its real cost (usage x the answering cluster's prices) and baseline cost
              (the same usage on the reference model); the reservation is settled to it, the ledger
              counts it (buffered, flushed every FLUSH_S), and it is on the response
    cache     deterministic requests (temperature 0 or a seed), exact match per tenant, when enabled
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from router.accounting import budgets, windows
from router.accounting.costs import Prices, nano
from router.api.chat import ChatRequest, content_text
from router.errors import BudgetExceeded, StateUnavailable
from router.serving import RouterState, Serving
from router.state.base import LedgerEntry, add_ledger
from router.tenancy.auth import Principal
from router.types import Decision, RequestOutcome, Target, Usage
from router.upstream.limits import retry_after
from router.upstream.transport.base import Completion, StreamState

log = logging.getLogger(__name__)

FLUSH_S = 0.2
CHARS_PER_TOKEN_RESERVED = 3  # a high estimate of prompt tokens (English runs ~4 characters a token)
# Body fields that do not change the answer, left out of the cache key.
NOT_IN_CACHE_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store"})


@dataclass
class Reservation:
    counters: list[budgets.Counter] = field(default_factory=list)


def reserved_completion_tokens(chat: ChatRequest, caps: Iterable[int]) -> int:
    """The most output the request can produce on any of its targets: the cap that is sent (the client's,
    else the largest of the targets' defaults, see Policy.output_cap) times the choices asked for."""
    return (chat.output_cap or max(caps, default=1)) * chat.choices


def reserved_prompt_tokens(chat: ChatRequest) -> int:
    chars = sum(len(str(m.content or "")) for m in chat.parsed.messages)
    return chars // CHARS_PER_TOKEN_RESERVED + 8 * len(chat.parsed.messages) + 8


def deterministic(body: Mapping[str, Any]) -> bool:
    t = body.get("temperature")
    return (isinstance(t, int | float) and t == 0) or isinstance(body.get("seed"), int)


class Accounting:
    def __init__(self, state: RouterState) -> None:
        self.state = state
        # (day, tenant, route, cluster) -> requests, input and output tokens, cost and baseline (nano-dollars),
        # cache hits: the ledger's rows since the last flush.
        self._ledger: dict[tuple[str, str, str, str], LedgerEntry] = {}
        self._lock = asyncio.Lock()
        self._settling: set[asyncio.Future[None]] = set()

    # -- prices ------------------------------------------------------------------------------
    # Every method below takes the request's own ``serving`` (the policy, clusters and prices it started
    # with): a reload while it runs must not change its prices or drop its cluster from under it.
    @staticmethod
    def prices(serving: Serving, cluster: str) -> Prices:
        return serving.prices.clusters[cluster]

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
        self, serving: Serving, principal: Principal, decision: Decision, chat: ChatRequest, outcome: RequestOutcome
    ) -> tuple[Decision, Reservation | None]:
        policy = serving.policy
        scoped = budgets.applicable(policy.budgets, principal.tenant, decision.route)
        if not scoped:
            return decision, None
        started = time.perf_counter()
        prompt = reserved_prompt_tokens(chat)
        uncapped: frozenset[str] = frozenset()
        metrics = self.state.metrics
        try:
            for _ in range(len(scoped) + 1):
                price = self.worst(serving, decision.targets)
                completion = reserved_completion_tokens(chat, (policy.output_cap(t.cluster) for t in decision.targets))
                ask = budgets.Ask(nano(prompt * price.input + completion * price.output), prompt + completion)
                counters = budgets.counters(scoped, ask, time.time(), self.state.settings.state_prefix, uncapped)
                result = await self.state.store.reserve(counters)
                if result.ok:
                    return decision, Reservation(counters)
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
                outcome.route, outcome.reason = decision.route, decision.reason
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
        outcome: RequestOutcome,
        usage: Usage | None,
        cache_hit: bool = False,
    ) -> None:
        """Cost the answer (or release the reservation of a request nobody answered) and count it."""
        answered = usage is not None
        cluster = outcome.cluster or "none"
        book = serving.prices
        cost = 0.0
        baseline = 0.0
        if usage is not None:
            if not cache_hit and cluster in book.clusters:
                cost = book.clusters[cluster].cost(usage)
            baseline = book.baseline.cost(usage)
            outcome.cost_usd, outcome.baseline_cost_usd = cost, baseline
        if reservation is not None and reservation.counters:
            tokens = usage.total_tokens if usage is not None else 0
            deltas = budgets.settle_deltas(reservation.counters, budgets.Ask(nano(cost), tokens), answered)
            if deltas:
                # Off the response's path: the answer does not wait for the store. Until it lands the
                # reservation stands (a crash in between leaves it reserved to the window's end: budgets
                # err on the side of the cap, never past it).
                task = asyncio.ensure_future(self._settle(deltas))
                self._settling.add(task)
                task.add_done_callback(self._settling.discard)
        if not answered:
            return
        assert usage is not None
        route = outcome.route or "none"
        key = (windows.day(time.time()).label, principal.tenant, route, cluster)
        row = self._ledger.get(key)
        if row is None:
            row = self._ledger[key] = LedgerEntry(*key, requests=0)
        row.requests += 1
        row.input_tokens += usage.input_tokens
        row.output_tokens += usage.output_tokens
        row.cost_nano += nano(cost) if cost else 0
        row.baseline_nano += nano(baseline) if baseline else 0
        row.cache_hits += 1 if cache_hit else 0
        self.state.metrics.record_cost(principal.tenant, route, cluster, cost, baseline)

    async def _settle(self, deltas: list[tuple[str, int, int]]) -> None:
        try:
            await self.state.store.settle(deltas, {})
        except StateUnavailable:
            log.warning("could not settle a reservation (state store unavailable)")

    async def stream_usage(self, chat: ChatRequest, st: StreamState) -> Usage:
        """A stream's usage: the upstream's final usage chunk, or counted (in a worker thread) from what was
        streamed."""
        if st.usage is not None:
            return st.usage
        prompt = [content_text(m.content) for m in chat.parsed.messages]
        return await self.state.tokens.usage(prompt, st.text())

    async def flush(self) -> None:
        """Write the buffered ledger to the state store (every FLUSH_S, before a usage report, at exit),
        after the settlements still under way."""
        if self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)
        async with self._lock:
            if not self._ledger:
                return
            rows, self._ledger = self._ledger, {}
            pending: dict[str, dict[str, int]] = {}
            for row in rows.values():
                add_ledger(pending, row)
            try:
                await self.state.store.settle([], pending)
            except StateUnavailable:
                for key, row in rows.items():  # keep them for the next flush
                    self._ledger.setdefault(key, LedgerEntry(*key, requests=0)).add(row)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.flush()

    # -- response cache ----------------------------------------------------------------------
    def cache_key(self, principal: Principal, chat: ChatRequest) -> str | None:
        c = self.state.serving.policy.cache
        if not c.enabled or chat.stream or not deterministic(chat.body):
            return None
        body = {k: v for k, v in chat.body.items() if k not in NOT_IN_CACHE_KEY}
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"{self.state.settings.state_prefix}c:{principal.tenant}:{digest}"

    async def cache_get(self, key: str, outcome: RequestOutcome) -> Completion | None:
        raw = await self.state.store.cache_get(key)
        self.state.metrics.cache_lookups.labels("hit" if raw is not None else "miss").inc()
        if raw is None:
            return None
        head, _, payload = raw.partition(b"\n")
        meta = orjson.loads(head)
        outcome.cluster, outcome.upstream_model = str(meta["cluster"]), str(meta["model"])
        usage = Usage(int(meta["usage"][0]), int(meta["usage"][1]))
        return Completion(payload, usage, str(meta["model"]), ())

    async def cache_put(self, key: str, result: Completion, outcome: RequestOutcome) -> None:
        c = self.state.serving.policy.cache
        if len(result.payload) > c.max_body_bytes or result.usage is None:
            return
        meta = {"cluster": outcome.cluster, "model": outcome.upstream_model, "usage": list(_usage(result.usage))}
        await self.state.store.cache_set(key, orjson.dumps(meta) + b"\n" + result.payload, c.ttl_s)


def _usage(u: Usage) -> tuple[int, int]:
    return u.input_tokens, u.output_tokens


def _when(unix: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
