"""Capacity planning from the hourly ledger: replicas needed at a target utilisation, the break-even
volume against the frontier fallback, and a recommendation a person can act on."""

from __future__ import annotations

import pytest

from router.accounting.capacity import frontier_fallback, parameters, per_hour, plan, render
from router.accounting.prices import price_book
from router.errors import InvalidRequest
from router.state.base import SEP, LedgerEntry, add_ledger
from tests.unit.pools import compiled, metered

# One replica: $86.4/day; the pool has three. api, the extract route's fallback: $5 / $15 per million.
POLICY = metered(
    3,
    pool_extra="    fallbacks: [api]\n",
    tail="""models:
  auto: {default_route: extract}
routes:
  - {name: extract, match: {tasks: [extraction]}, cluster: pool}
costs: {baseline_model: openai/m, baseline_price: {input_usd_per_mtok: 5, output_usd_per_mtok: 15}}
""",
)
HOURS = [f"202612030{h}" for h in range(10)] + [f"20261203{h}" for h in range(10, 24)]


def _report(per_hour_tokens: dict[str, tuple[int, int]], target: float = 0.7, served=None):  # type: ignore[no-untyped-def]
    policy = compiled(POLICY)
    ledgers: dict[str, dict[str, int]] = {}
    for hour, (i, o) in per_hour_tokens.items():
        add_ledger(ledgers, LedgerEntry(hour, "t", "extract", "pool", 1, i, o, 0, 0))
    return plan(policy, price_book(policy), HOURS, ledgers, served or {}, target)["pools"][0]


def test_a_small_volume_is_cheaper_on_the_frontier_fallback() -> None:
    # 1M input + 100K output tokens a day on the API: $6.5; one replica costs $86.4 a day.
    pool = _report({"2026120312": (1_000_000, 100_000)})
    assert pool["frontier_fallbacks"] == ["api"]
    per_token = (5e-6 * 1_000_000 + 15e-6 * 100_000) / 1_100_000
    assert pool["break_even_tokens_per_day"] == pytest.approx(86.4 / per_token, rel=1e-6)
    assert pool["replicas_needed"] == 1
    assert pool["recommendation"].startswith("pool: 1,100,000 tokens/day is below the break-even")
    assert "send its routes (extract) there" in pool["recommendation"]
    assert "saves $252.70/day" in pool["recommendation"]  # 3 replicas x 86.4 - 6.5
    (route,) = pool["routes"]
    assert route["route"] == "extract"
    assert route["frontier_fallback"] == "api"
    assert route["tokens_per_hour_peak"] == 1_100_000
    assert route["tokens_per_hour_mean"] == pytest.approx(1_100_000 / 24, abs=0.1)
    assert route["break_even_tokens_per_day"] == pytest.approx(86.4 / per_token, rel=1e-6)


def test_a_busy_pool_is_sized_for_its_peak_hour() -> None:
    # Peak hour: 9M input (2.5 replica-hours) + 360K output (1 replica-hour) = 3.5 busy replicas -> 5 at 70 %.
    hours = dict.fromkeys(HOURS, (1000000, 0))  # 24M tokens a day: above the break-even
    hours["2026120314"] = (9_000_000, 360_000)
    pool = _report(hours)
    assert pool["peak_busy_replicas"] == pytest.approx(3.5)
    assert pool["replicas_needed"] == 5
    assert pool["tokens_per_hour_peak"] == 9_360_000
    assert "needs 5 replica(s) at 70% utilisation; it has 3: add 2" in pool["recommendation"]
    # Sized at 100 %: 4.
    assert _report(hours, target=1.0)["replicas_needed"] == 4


def test_an_oversized_pool_is_told_to_scale_in() -> None:
    hours = dict.fromkeys(HOURS, (1800000, 0))  # 0.5 busy replicas every hour; 43M tokens a day
    pool = _report(hours)
    assert pool["replicas_needed"] == 1
    assert "scale to 1 (saves $172.80/day)" in pool["recommendation"]


def test_the_pools_counters_size_it_when_they_count_more_than_the_ledger() -> None:
    field = SEP.join(("pool", "proxyA", "prompt_tokens"))
    served = {"2026120314": {field: 9_000_000}}  # traffic that did not pass the router
    pool = _report({"2026120314": (1_000_000, 0)}, served=served)
    assert pool["tokens_per_hour_peak"] == 9_000_000
    assert per_hour({}, served)["pool"]["2026120314"].input_tokens == 9_000_000


def test_an_unused_pool_and_the_text_report() -> None:
    pool = _report({})
    assert (
        pool["recommendation"]
        == "pool served nothing in 1 day(s) and costs $259.20/day: remove it or route traffic to it"
    )
    policy = compiled(POLICY)
    assert frontier_fallback(policy, "extract") == "api"
    assert frontier_fallback(policy, "nope") is None
    doc = plan(policy, price_book(policy), HOURS, {}, {})
    text = render(doc)
    assert "break-even tok/day" in text
    assert "pool <- " not in text  # no route served
    assert "* pool served nothing" in text


def test_parameters_are_checked() -> None:
    assert parameters(None, None) == (1, 0.7)
    assert parameters("7", "0.5") == (7, 0.5)
    for days, target, param in (("0", None, "days"), ("x", None, "days"), (None, "1.5", "target_utilisation")):
        with pytest.raises(InvalidRequest) as err:
            parameters(days, target)
        assert err.value.param == param
