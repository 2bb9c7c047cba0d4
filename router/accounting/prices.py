"""Prices from litellm's offline price map, and token counting: the router's only other use of litellm.

``LITELLM_LOCAL_MODEL_COST_MAP`` is forced on by :func:`router.upstream.transport.frontier.import_litellm`, so the
map bundled with the pinned litellm is read and nothing is fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.accounting.costs import Prices
from router.errors import PolicyError, PolicyIssue
from router.policy.compile import Policy
from router.policy.schema import FrontierCluster, VllmCluster
from router.upstream.transport.frontier import import_litellm

log = logging.getLogger(__name__)


def litellm_prices(litellm: Any, model: str) -> Prices | None:
    try:
        info = litellm.get_model_info(model)
    except Exception:  # noqa: BLE001 - litellm raises bare Exception for a model it does not know
        return None
    i, o = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if not isinstance(i, int | float) or not isinstance(o, int | float):
        return None
    return Prices(float(i), float(o))


@dataclass(frozen=True)
class PriceBook:
    clusters: Mapping[str, Prices]
    baseline: Prices
    tiers: Mapping[tuple[str, str], Prices] = field(default_factory=dict)  # (pool, tier) of tiered pools

    def of(self, cluster: str, tier: str | None = None) -> Prices | None:
        """The prices of an answer from ``cluster`` (on an endpoint of ``tier``, when the pool has tiers)."""
        if tier is not None:
            found = self.tiers.get((cluster, tier))
            if found is not None:
                return found
        return self.clusters.get(cluster)


def price_book(policy: Policy) -> PriceBook:
    """Every cluster's prices and the baseline's; a price nobody knows is a policy error (file, line)."""
    litellm: Any = None
    issues: list[PolicyIssue] = []

    def known(model: str) -> Prices | None:
        nonlocal litellm
        litellm = litellm or import_litellm()
        return litellm_prices(litellm, model)

    out: dict[str, Prices] = {}
    tiers: dict[tuple[str, str], Prices] = {}
    for name, cfg in policy.clusters.items():
        if isinstance(cfg, VllmCluster):
            out[name] = Prices.self_hosted(cfg.cost)
            for spec in cfg.endpoint_specs():
                if spec.usd_per_gpu_hour is not None and spec.tier is not None:
                    tiers[(name, spec.tier)] = Prices.self_hosted(
                        cfg.cost.model_copy(update={"usd_per_gpu_hour": spec.usd_per_gpu_hour})
                    )
            continue
        assert isinstance(cfg, FrontierCluster)
        found = Prices.per_million(cfg.price) if cfg.price is not None else known(cfg.model)
        if found is None:
            file, line = policy.locations.get(f"clusters.{name}", ("(policy)", None))
            issues.append(
                PolicyIssue(
                    file, line, f"clusters.{name}.price", f"litellm has no price for {cfg.model!r}: set `price`"
                )
            )
            continue
        out[name] = found
    c = policy.costs
    baseline = Prices.per_million(c.baseline_price) if c.baseline_price is not None else known(c.baseline_model)
    if baseline is None:
        file, line = policy.locations.get("costs", ("(policy)", None))
        issues.append(
            PolicyIssue(
                file,
                line,
                "costs.baseline_model",
                f"litellm has no price for {c.baseline_model!r}: set `costs.baseline_price`",
            )
        )
    if issues:
        raise PolicyError(issues)
    assert baseline is not None
    return PriceBook(out, baseline, tiers)
