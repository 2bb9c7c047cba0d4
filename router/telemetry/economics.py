"""Gauges of the pools' utilisation-true economics (router.accounting.economics), read at scrape time from
the last figures a replica computed from the shared ledger: every replica reports the same numbers, so a
dashboard takes ``max by (cluster)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from router.telemetry import names as n


class EconomicsGauges(Collector):
    def __init__(self) -> None:
        self.current: Mapping[str, Any] | None = None  # the last figures (economics JSON); None: none yet

    def publish(self, doc: Mapping[str, Any]) -> None:
        self.current = doc

    def collect(self) -> Iterator[GaugeMetricFamily]:
        doc = self.current
        if doc is None:
            return
        hours = doc["window_s"] / 3600
        window = GaugeMetricFamily(n.M_ECON_WINDOW, "Seconds of ledger the economics gauges are computed over.")
        window.add_metric([], doc["window_s"])
        util = GaugeMetricFamily(
            n.M_POOL_UTILISATION,
            "Busy share of a pool's replica-hours over the window (source router: the ledger's tokens; vllm: the "
            "pool's own counters, which include traffic that did not pass the router).",
            labels=["cluster", "source"],
        )
        eff = GaugeMetricFamily(
            n.M_POOL_EFFECTIVE_MTOK,
            "Dollars per million tokens with the pool's idle time paid for (direction input|output).",
            labels=["cluster", "direction"],
        )
        eff_1k = GaugeMetricFamily(
            n.M_POOL_EFFECTIVE_1K,
            "Dollars per 1K tokens (input and output) with idle time paid for.",
            labels=["cluster"],
        )
        base_1k = GaugeMetricFamily(
            n.M_POOL_BASELINE_1K, "Dollars per 1K of the pool's tokens on the baseline model.", labels=["cluster"]
        )
        fixed = GaugeMetricFamily(
            n.M_POOL_FIXED_HOURLY,
            "What a pool costs per hour, busy or idle (every replica's GPU-hours).",
            labels=["cluster"],
        )
        idle = GaugeMetricFamily(
            n.M_POOL_IDLE_HOURLY,
            "Dollars per hour of a pool's cost that served nothing, over the window.",
            labels=["cluster"],
        )
        tokens = GaugeMetricFamily(
            n.M_POOL_TOKENS_HOURLY,
            "Tokens per hour a pool served over the window (source router|vllm, direction input|output).",
            labels=["cluster", "direction", "source"],
        )
        route_1k = GaugeMetricFamily(
            n.M_ROUTE_EFFECTIVE_1K,
            "Dollars per 1K tokens of a route: frontier spend plus its share of the pools' fixed cost.",
            labels=["route"],
        )
        route_base = GaugeMetricFamily(
            n.M_ROUTE_BASELINE_1K, "Dollars per 1K of a route's tokens on the baseline model.", labels=["route"]
        )
        for p in doc["pools"]:
            c = p["cluster"]
            fixed.add_metric([c], p["usd_per_hour"])
            idle.add_metric([c], p["idle_usd"] / hours if hours else 0.0)
            for source, value in (("router", p["utilisation"]), ("vllm", p["vllm_utilisation"])):
                if value is not None:
                    util.add_metric([c, source], value)
            for direction, value in (
                ("input", p["effective_usd_per_mtok_input"]),
                ("output", p["effective_usd_per_mtok_output"]),
            ):
                if value is not None:
                    eff.add_metric([c, direction], value)
            if p["effective_usd_per_1k_tokens"] is not None:
                eff_1k.add_metric([c], p["effective_usd_per_1k_tokens"])
                base_1k.add_metric([c], p["baseline_usd_per_1k_tokens"])
            for direction, key in (("input", "input_tokens"), ("output", "output_tokens")):
                tokens.add_metric([c, direction, "router"], p[key] / hours if hours else 0.0)
                if p[f"vllm_{key}"] is not None:
                    tokens.add_metric([c, direction, "vllm"], p[f"vllm_{key}"] / hours if hours else 0.0)
        for r in doc["routes"]:
            if r["effective_usd_per_1k_tokens"] is not None:
                route_1k.add_metric([r["route"]], r["effective_usd_per_1k_tokens"])
                route_base.add_metric([r["route"]], r["baseline_usd_per_1k_tokens"])
        yield from (window, util, eff, eff_1k, base_1k, fixed, idle, tokens, route_1k, route_base)
