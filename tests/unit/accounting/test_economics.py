"""Utilisation-true pool economics: fixed cost over the window, effective prices at the real utilisation,
idle cost shared by busy time, and the pools' own counters as a cross-check."""

from __future__ import annotations

import pytest

from router.accounting.economics import economics, pool_cost, served
from router.accounting.usage import render, report
from router.policy.compile import Policy
from router.policy.schema import VllmCluster
from router.state.base import SEP, LedgerEntry, add_ledger
from tests.unit.pools import compiled, metered

POLICY = metered(2)  # two replicas: $0.001/s each; $1 / $10 per million tokens at full use


def _policy(text: str = POLICY) -> Policy:
    return compiled(text)


def _ledger(*rows: LedgerEntry) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        add_ledger(out, r)
    return out


def test_a_pool_busy_a_tenth_of_the_window_costs_ten_times_its_marginal_price() -> None:
    # One hour, 2 replicas = 7200 replica-seconds; 360,000 input + 36,000 output tokens = 360 + 360 = 720 busy s.
    marginal = 360_000 * 1e-6 + 36_000 * 10e-6  # $0.72 in headers
    ledgers = _ledger(LedgerEntry("2026120310", "t", "extract", "pool", 10, 360_000, 36_000, int(marginal * 1e9), 0))
    econ = economics(_policy(), ledgers, {}, 3600)
    pool = econ.as_json()["pools"][0]
    assert pool["utilisation"] == pytest.approx(0.1)
    assert pool["fixed_usd"] == pytest.approx(7.2)
    assert pool["idle_usd"] == pytest.approx(7.2 - 0.72)
    assert pool["effective_usd_per_mtok_input"] == pytest.approx(10.0)  # $1 marginal / 0.1
    assert pool["effective_usd_per_mtok_output"] == pytest.approx(100.0)
    assert pool["idle_replicas"] == pytest.approx(1.8)
    assert pool["effective_usd_per_1k_tokens"] == pytest.approx(7.2 / 396)
    assert pool["vllm_input_tokens"] is None  # not scraped


def test_at_full_utilisation_the_effective_price_is_the_marginal_one() -> None:
    ledgers = _ledger(LedgerEntry("2026120310", "t", "x", "pool", 1, 3_600_000, 360_000, 7_200_000_000, 0))
    pool = economics(_policy(), ledgers, {}, 3600).pools["pool"]
    assert pool.utilisation == pytest.approx(1.0)
    assert pool.effective_per_mtok() == pytest.approx((1.0, 10.0))
    assert pool.idle_usd == pytest.approx(0.0)
    assert pool.as_json()["note"] is None
    busier = economics(_policy(), ledgers, {}, 1800).pools["pool"].as_json()
    assert busier["note"].startswith("busier than its replicas can be (200%)")


def test_an_idle_pool_is_all_idle_cost_carried_by_nobody() -> None:
    econ = economics(_policy(), {}, {}, 1800)
    assert econ.pools["pool"].utilisation == 0
    assert econ.pools["pool"].effective_per_mtok() == (None, None)
    assert econ.unallocated_idle() == pytest.approx(3.6)
    assert econ.as_json()["total"]["net_savings_usd"] == pytest.approx(-3.6)


def test_routes_share_a_pools_idle_cost_by_busy_time_and_savings_are_net_of_it() -> None:
    # a: 360 busy s; b: 720 busy s (output is 10x dearer in time). Frontier route c: marginal only.
    ledgers = _ledger(
        LedgerEntry("20261203", "t1", "a", "pool", 1, 360_000, 0, 360_000_000, 5_000_000_000),
        LedgerEntry("20261203", "t2", "b", "pool", 1, 0, 72_000, 720_000_000, 5_000_000_000),
        LedgerEntry("20261203", "t1", "c", "api", 1, 1000, 1000, 20_000_000, 30_000_000),
    )
    econ = economics(_policy(), ledgers, {}, 3600)  # fixed 7.2, marginal 1.08, idle 6.12
    routes = {r["route"]: r for r in econ.routes()}
    assert routes["a"]["idle_usd"] == pytest.approx(6.12 / 3)
    assert routes["b"]["idle_usd"] == pytest.approx(6.12 * 2 / 3)
    assert routes["c"]["idle_usd"] == 0
    assert routes["a"]["cost_usd"] == pytest.approx(0.36 + 2.04)
    total = econ.as_json()["total"]
    assert total["cost_usd"] == pytest.approx(7.2 + 0.02)
    assert total["net_savings_usd"] == pytest.approx(10.03 - 7.22)
    # The usage report carries each row's idle share and net savings, and prints them.
    doc = report(ledgers, ("tenant",), econ)
    rows = {r["tenant"]: r for r in doc["rows"]}
    assert rows["t2"]["idle_usd"] == pytest.approx(4.08)
    assert rows["t2"]["net_savings_usd"] == pytest.approx(5 - 0.72 - 4.08)
    assert doc["total"]["idle_usd"] == pytest.approx(6.12)
    text = render(doc)
    assert "net saved $" in text
    assert "pools over 1.0 h" in text
    assert "$/1K" in text


def test_the_pools_counters_count_once_per_hour_however_many_proxies_scraped_them() -> None:
    tables = {
        "2026120310v": {
            SEP.join(("pool", "proxyA", "prompt_tokens")): 1000,
            SEP.join(("pool", "proxyB", "prompt_tokens")): 990,  # same pool, a scrape fewer
            SEP.join(("pool", "proxyA", "generation_tokens")): 50,
        },
        "2026120311v": {SEP.join(("pool", "proxyC", "prompt_tokens")): 10},  # A and B gone, C started
    }
    assert served(tables.values()) == {"pool": (1010, 50)}
    pool = economics(_policy(), {}, tables, 3600).as_json()["pools"][0]
    assert (pool["vllm_input_tokens"], pool["vllm_output_tokens"]) == (1010, 50)
    assert pool["vllm_utilisation"] == pytest.approx((1.01 + 0.5) / 7200, rel=1e-6)


def test_tiers_price_each_replica_at_its_own_rate() -> None:
    policy = _policy(
        POLICY.replace(
            'endpoints: ["http://10.0.0.1:1/v1", "http://10.0.0.2:1/v1"]',
            "endpoints:\n      - {url: 'http://10.0.0.1:1/v1', tier: spot, usd_per_gpu_hour: 1.2}\n"
            "      - {url: 'http://10.0.0.2:1/v1', tier: on-demand}",
        )
    )
    cfg = policy.clusters["pool"]
    assert isinstance(cfg, VllmCluster)
    assert cfg.tiers() == ["spot", "on-demand"]
    cost = pool_cost(cfg)
    assert cost.replicas == 2
    assert cost.usd_per_hour == pytest.approx(4.8)
    assert cost.usd_per_hour_of(1) == pytest.approx(2.4)


def test_replicas_cost_while_the_health_checks_saw_them_up_by_tier() -> None:
    policy = _policy(
        POLICY.replace(
            'endpoints: ["http://10.0.0.1:1/v1", "http://10.0.0.2:1/v1"]',
            "endpoints:\n      - {url: 'http://10.0.0.1:1/v1', tier: spot, usd_per_gpu_hour: 1.2}\n"
            "      - {url: 'http://10.0.0.2:1/v1', tier: on-demand}",
        )
    )
    up = {
        "2026120310v": {
            SEP.join(("pool", "proxyA", "up_ms", "spot")): 1_800_000,  # spot up half the hour, then reclaimed
            SEP.join(("pool", "proxyB", "up_ms", "spot")): 1_700_000,
            SEP.join(("pool", "proxyA", "up_ms", "on-demand")): 3_600_000,
        }
    }
    ledgers = _ledger(LedgerEntry("2026120310", "t", "x", "pool", 1, 540_000, 0, 0, 0))  # 540 busy s
    pool = economics(policy, ledgers, up, 3600).pools["pool"]
    assert pool.replica_s == 5400
    assert pool.fixed_usd == pytest.approx(0.5 * 1.2 + 3.6)
    assert pool.utilisation == pytest.approx(0.1)
    doc = pool.as_json()
    assert doc["replicas_up"] == 1.5
    assert doc["replicas"] == 2
