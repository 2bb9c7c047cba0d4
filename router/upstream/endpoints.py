"""One upstream endpoint's live state: active health, outlier ejection, in-flight count, scraped load."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from router.policy.schema_base import DEFAULT_TIER
from router.redaction import redact_url
from router.upstream.balance import Load
from router.upstream.estimate import Estimate
from router.upstream.outlier import OutlierState

SCRAPE_STALE_AFTER = 3.0  # scrape intervals after which scraped load is ignored


@dataclass
class Scraped:
    """vLLM's own view of its load, from its Prometheus ``/metrics``."""

    running: float | None = None
    waiting: float | None = None
    kv: float | None = None
    at: float = 0.0  # monotonic time of the scrape; 0: never
    # vLLM's token counters at the last scrape (None: not on its page), to count what was served between two.
    prompt_tokens: float | None = None
    generation_tokens: float | None = None


@dataclass
class Endpoint:
    url: str
    host: str
    port: int
    adapters: frozenset[str] = frozenset()
    emulated: bool = False
    tier: int = 0  # rank of its tier in the cluster, cheapest first
    tier_name: str = DEFAULT_TIER
    healthy: bool = True  # the active health checks' verdict
    check_failures: int = 0  # consecutive failed probes
    check_successes: int = 0
    outlier: OutlierState = field(default_factory=OutlierState)
    in_flight: int = 0
    scraped: Scraped = field(default_factory=Scraped)
    # This endpoint's own latency (its cluster keeps the same over all endpoints): a slow replica shows.
    ttft: Estimate = field(default_factory=Estimate)
    latency: Estimate = field(default_factory=Estimate)
    attempts: int = 0
    failures: int = 0
    last_error: str = ""
    # What logs, metrics, spans, the admin view and errors show: the URL without userinfo or query.
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            self.label = redact_url(self.url)

    def shown(self, message: str) -> str:
        """``message`` with this endpoint's full URL (userinfo, query) replaced by its label."""
        return message.replace(self.url, self.label) if self.url != self.label else message

    @classmethod
    def parse(
        cls,
        url: str,
        adapters: frozenset[str] = frozenset(),
        emulated: bool = False,
        tier: tuple[int, str] = (0, DEFAULT_TIER),
    ) -> Endpoint:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        return cls(url, host, port, adapters, emulated, tier=tier[0], tier_name=tier[1])

    def available(self, now: float) -> bool:
        return self.healthy and not self.outlier.ejected(now)

    def serves(self, adapter: str | None) -> bool:
        return adapter is None or adapter in self.adapters

    def load(self, now: float, scrape_interval_s: float) -> Load:
        s = self.scraped
        fresh = s.at > 0 and scrape_interval_s > 0 and now - s.at <= SCRAPE_STALE_AFTER * scrape_interval_s
        if not fresh:
            return Load(self.in_flight)
        return Load(self.in_flight, s.running, s.waiting, s.kv)
