"""Gauges of the live clusters (in flight, pending, latency estimates, endpoint health and ejection), read
at scrape time, so that clusters gone after a reload disappear from ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from router.telemetry import names as n


@dataclass(frozen=True, slots=True)
class EndpointGauges:
    endpoint: str
    up: bool  # the active health checks' verdict
    ejected: bool  # outlier ejection or cooldown in force
    in_flight: int
    # (measure, stat) -> seconds: ("ttft" | "latency", "ewma" | "p95"); None: no samples / too few for a p95
    estimates: dict[tuple[str, str], float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterGauges:
    """One cluster's live state, read when ``/metrics`` is scraped."""

    cluster: str
    in_flight: int
    pending: int
    # (measure, stat) -> seconds, e.g. ("ttft", "p95"); None: not enough samples
    estimates: dict[tuple[str, str], float | None] = field(default_factory=dict)
    endpoints: Sequence[EndpointGauges] = ()


class LiveGauges(Collector):
    """Gauges read from the live clusters at scrape time, so clusters gone after a reload disappear."""

    def __init__(self) -> None:
        self.read: Callable[[], Sequence[ClusterGauges]] = lambda: ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        clusters = self.read()
        in_flight = GaugeMetricFamily(
            n.M_CLUSTER_IN_FLIGHT, "Upstream calls in flight, by cluster.", labels=["cluster"]
        )
        pending = GaugeMetricFamily(
            n.M_CLUSTER_PENDING, "Requests waiting for an in-flight slot (circuit breaker).", labels=["cluster"]
        )
        latency = GaugeMetricFamily(
            n.M_CLUSTER_LATENCY,
            "Live latency estimates of a cluster's attempts (measure ttft|latency|queue, stat ewma|p95).",
            labels=["cluster", "measure", "stat"],
        )
        up = GaugeMetricFamily(
            n.M_ENDPOINT_UP, "1 if the endpoint's active health checks pass.", labels=["cluster", "endpoint"]
        )
        ejected = GaugeMetricFamily(
            n.M_ENDPOINT_EJECTED, "1 while the endpoint is ejected or cooling down.", labels=["cluster", "endpoint"]
        )
        ep_latency = GaugeMetricFamily(
            n.M_ENDPOINT_LATENCY,
            "Live latency estimates of an endpoint's successful attempts (measure ttft|latency, stat ewma|p95; "
            "the p95 needs 10 samples in 60 s, the EWMA shows from the first).",
            labels=["cluster", "endpoint", "measure", "stat"],
        )
        ep_in_flight = GaugeMetricFamily(
            n.M_ENDPOINT_IN_FLIGHT, "This proxy's requests in flight to the endpoint.", labels=["cluster", "endpoint"]
        )
        for c in clusters:
            in_flight.add_metric([c.cluster], c.in_flight)
            pending.add_metric([c.cluster], c.pending)
            for (measure, stat), value in c.estimates.items():
                if value is not None:
                    latency.add_metric([c.cluster, measure, stat], value)
            for e in c.endpoints:
                up.add_metric([c.cluster, e.endpoint], 1 if e.up else 0)
                ejected.add_metric([c.cluster, e.endpoint], 1 if e.ejected else 0)
                ep_in_flight.add_metric([c.cluster, e.endpoint], e.in_flight)
                for (measure, stat), value in e.estimates.items():
                    if value is not None:
                        ep_latency.add_metric([c.cluster, e.endpoint, measure, stat], value)
        yield from (in_flight, pending, latency, up, ejected, ep_in_flight, ep_latency)
