from __future__ import annotations

import pytest

from router.accounting.costs import NANO, Prices, header, nano, usd
from router.policy.schema import Price, SelfHostedCost
from router.types import Usage


def test_self_hosted_price_is_gpu_time_over_throughput() -> None:
    p = Prices.self_hosted(
        SelfHostedCost(
            usd_per_gpu_hour=3.6, gpus_per_replica=2, input_tokens_per_second=100_000, output_tokens_per_second=10_000
        )
    )
    assert p.per_mtok() == pytest.approx((0.02, 0.2))  # $0.002/s over 100k and 10k tokens a second
    assert p.cost(Usage(1_000_000, 1_000_000)) == pytest.approx(0.22)


def test_prices_money_and_headers() -> None:
    p = Prices.per_million(Price(input_usd_per_mtok=3, output_usd_per_mtok=15))
    assert p.cost(Usage(1000, 100)) == pytest.approx(0.0045)
    assert p.worst(Prices(1e-5, 1e-6)) == Prices(1e-5, 1.5e-5)
    assert nano(0.0045) == 4_500_000
    assert nano(1e-12) == 1  # rounded up: a reservation is never short
    assert usd(NANO) == 1.0
    assert header(6.041666666666668e-7) == "0.0000006042"
