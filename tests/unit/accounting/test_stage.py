"""The accounting stage over an in-memory store: a reservation against the budgets that apply, a downgrade
when one is exhausted, the settlement to the real cost (or the release when nobody answered), and the
prices of the request's own Serving snapshot."""

from __future__ import annotations

import time

import orjson
import pytest

from router.accounting.costs import nano
from router.accounting.stage import LEASE_MARGIN_S, Accounting, lease_seconds, reserved_completion_tokens
from router.accounting.windows import day
from router.api.chat import ChatRequest, parse_chat_request
from router.errors import BudgetExceeded
from router.serving import Serving
from router.state.memory import MemoryStore
from router.telemetry.metrics import Metrics
from router.tenancy.auth import Principal
from router.types import Usage
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport
from tests.unit.inproc import POLICY, inproc_state

TENANT = Principal("t", "k")


async def _ok(call: UpstreamCall) -> Completion:
    return Completion(b"{}", None, "m", ())


def _setup(budgets: str) -> tuple[Accounting, Serving, MemoryStore, Metrics]:
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)}, POLICY + budgets)
    store, metrics = MemoryStore(), Metrics()
    return Accounting(lambda: store, metrics, "test:"), state.serving, store, metrics


def _chat(model: str, **extra: object) -> ChatRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
    return parse_chat_request(orjson.dumps(body))


def test_the_reserved_output_is_the_cap_sent_times_the_choices() -> None:
    assert reserved_completion_tokens(_chat("api", max_tokens=10, n=3), [4096]) == 30
    assert reserved_completion_tokens(_chat("api"), [64, 512]) == 512  # the largest default of the targets


async def test_no_budget_no_reservation_and_an_answer_is_costed_at_its_clusters_price() -> None:
    acc, serving, _store, _ = _setup("")
    decision = serving.policy.pinned["api"]
    same, reservation = await acc.reserve(serving, TENANT, decision, _chat("api"))
    assert (same, reservation) == (decision, None)
    costed = await acc.settle(serving, TENANT, None, "model:api", "api", Usage(1_000_000, 1_000_000))
    assert costed is not None
    assert costed.cost_usd == pytest.approx(3.0)  # the inproc policy's price: $1 in, $2 out per million
    assert costed.baseline_usd == pytest.approx(12.5)
    assert await acc.settle(serving, TENANT, None, "model:api", "api", None) is None  # nobody answered


async def test_an_exhausted_budget_denies_with_when_it_resets() -> None:
    acc, serving, _, metrics = _setup("budgets:\n  - {name: rpm, tenant: t, requests_per_minute: 1}\n")
    decision = serving.policy.pinned["api"]
    _, first = await acc.reserve(serving, TENANT, decision, _chat("api"))
    assert first is not None
    with pytest.raises(BudgetExceeded) as info:
        await acc.reserve(serving, TENANT, decision, _chat("api"))
    assert info.value.budget == "rpm"
    assert int(info.value.headers()["Retry-After"]) <= 60
    other, _ = await acc.reserve(serving, Principal("u", "k"), decision, _chat("api"))  # another tenant's own
    assert other == decision
    assert metrics.registry.get_sample_value("router_budget_exhausted_total", {"budget": "rpm", "action": "deny"}) == 1


async def test_an_exhausted_budget_may_downgrade_to_a_pool_instead() -> None:
    acc, serving, _, _ = _setup(
        "budgets:\n  - {name: cap, tenant: '*', usd_per_day: 0.0001, on_exhausted: downgrade, downgrade_to: pool}\n"
    )
    decision = serving.policy.pinned["api"]
    chat = _chat("api", max_tokens=1000)  # $0.002 at most on the frontier: over the cap
    downgraded, reservation = await acc.reserve(serving, TENANT, decision, chat)
    assert [t.cluster for t in downgraded.targets] == ["pool"]
    assert "budget 'cap' exhausted: downgraded to 'pool'" in downgraded.reason
    assert reservation is not None


async def test_settling_an_unanswered_request_gives_its_reservation_back() -> None:
    acc, serving, store, _ = _setup("budgets:\n  - {name: tpm, tenant: t, tokens_per_minute: 100000}\n")
    decision = serving.policy.pinned["api"]
    _, reservation = await acc.reserve(serving, TENANT, decision, _chat("api", max_tokens=50))
    assert reservation is not None
    (counter,) = reservation.lease.counters
    assert store.value(counter.key) > 50
    await acc.settle(serving, TENANT, reservation, "model:api", None, None)
    await acc.flush()  # waits for the settlement under way
    assert store.value(counter.key) == 0


async def test_a_cluster_the_snapshot_does_not_price_costs_nothing_rather_than_failing() -> None:
    acc, serving, _, _ = _setup("")
    costed = await acc.settle(serving, TENANT, None, "gone", "dropped-by-a-reload", Usage(10, 10))
    assert costed is not None
    assert costed.cost_usd == 0.0
    assert costed.baseline_usd > 0


async def test_a_lease_lasts_its_callers_deadline_or_its_targets_limits_plus_a_margin() -> None:
    acc, serving, _store, _ = _setup("budgets:\n  - {name: day, tenant: '*', usd_per_day: 10}\n")
    decision = serving.policy.pinned["api"]
    assert lease_seconds(serving, decision, time.monotonic() + 5) == pytest.approx(5 + LEASE_MARGIN_S, abs=0.1)
    cfg = serving.policy.clusters["api"]
    bound = cfg.timeouts.total_s * (getattr(cfg, "max_attempts", 1) + cfg.retry.same_endpoint)
    assert lease_seconds(serving, decision, None) == bound + LEASE_MARGIN_S
    _, reservation = await acc.reserve(serving, TENANT, decision, _chat("api"), time.monotonic() + 5)
    assert reservation is not None
    assert time.time() + 60 < reservation.lease.expires_at <= time.time() + 5 + LEASE_MARGIN_S + 2
    assert reservation.day == day(time.time()).label


async def test_a_request_that_never_settles_is_reaped_and_the_gauges_say_so() -> None:
    acc, serving, store, metrics = _setup("budgets:\n  - {name: day, tenant: '*', usd_per_day: 10}\n")
    decision = serving.policy.pinned["api"]
    _, reservation = await acc.reserve(serving, TENANT, decision, _chat("api", max_tokens=100))
    assert reservation is not None
    (counter,) = reservation.lease.counters
    await acc.maintain(time.time(), gauges=True)  # not expired yet: it stays, as an open lease
    assert metrics.registry.get_sample_value("router_budget_leases", {"state": "open"}) == 1
    assert store.value(counter.key) == counter.amount
    await acc.maintain(reservation.lease.expires_at + 1, gauges=True)  # its replica crashed, say
    assert store.value(counter.key) == 0
    assert metrics.registry.get_sample_value("router_budget_leases_reaped_total") == 1
    assert metrics.registry.get_sample_value("router_budget_leases", {"state": "open"}) == 0
    assert metrics.registry.get_sample_value("router_budget_invariant_difference", {"limit": "usd_per_day"}) == 0
    costed = await acc.settle(serving, TENANT, reservation, "model:api", "api", Usage(10, 10))  # it did end
    await acc.flush()
    assert costed is not None
    assert store.value(counter.key) == nano(costed.cost_usd)  # its use, once
