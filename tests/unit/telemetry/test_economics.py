"""The economics gauges render the last published figures, and nothing before the first."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from router.accounting.economics import economics
from router.state.base import LedgerEntry, add_ledger
from router.telemetry.economics import EconomicsGauges
from tests.unit.pools import compiled, metered

POLICY = metered(1)


def test_gauges_follow_the_published_figures() -> None:
    registry = CollectorRegistry()
    gauges = EconomicsGauges()
    registry.register(gauges)
    assert b"router_pool" not in generate_latest(registry)
    ledgers: dict[str, dict[str, int]] = {}
    add_ledger(ledgers, LedgerEntry("2026120310", "t", "r", "pool", 1, 360_000, 0, 360_000_000, 1_000_000_000))
    gauges.publish(economics(compiled(POLICY), ledgers, {}, 3600).as_json())
    text = generate_latest(registry).decode()
    assert 'router_pool_utilisation_ratio{cluster="pool",source="router"} 0.1' in text
    assert 'router_pool_effective_usd_per_mtok{cluster="pool",direction="input"} 10.0' in text
    assert 'router_pool_idle_usd_per_hour{cluster="pool"} 3.24' in text
    assert 'router_pool_tokens_per_hour{cluster="pool",direction="input",source="router"} 360000.0' in text
    assert 'router_route_effective_usd_per_1k_tokens{route="r"} 0.01' in text
    assert "router_economics_window_seconds 3600.0" in text
    assert 'source="vllm"' not in text  # the pool's counters were not scraped
