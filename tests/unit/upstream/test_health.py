import asyncio
from typing import Any

import aiohttp

from router.policy.compile import compile_texts
from router.policy.schema import HealthCheck
from router.upstream.endpoints import Endpoint
from router.upstream.health import HealthChecker, apply_probe, health_url, probe, scrape
from router.upstream.outlier import EjectionRule
from router.upstream.upstreams import EmulatedUpstreams, build_upstreams
from tests.conftest import url


def test_health_url_is_at_the_server_root() -> None:
    assert health_url(Endpoint.parse("http://h:8000/v1")) == "http://h:8000/health"
    assert health_url(Endpoint.parse("http://h:8000")) == "http://h:8000/health"
    assert health_url(Endpoint.parse("http://h:8000/v1"), "/ping") == "http://h:8000/ping"


async def test_probe_and_scrape(emulator: Any) -> None:
    server = await emulator()
    async with aiohttp.ClientSession() as s:
        endpoint = Endpoint.parse(url(server))
        assert await probe(s, endpoint)
        assert not await probe(s, Endpoint.parse("http://127.0.0.1:9/v1"), timeout_s=0.5)
        await scrape(s, endpoint, HealthCheck(), lambda: 42.0)
    assert (endpoint.scraped.running, endpoint.scraped.waiting, endpoint.scraped.kv) == (0.0, 0.0, 0.0)
    assert endpoint.scraped.at == 42.0


def test_endpoints_flip_after_the_configured_number_of_probes() -> None:
    hc = HealthCheck(unhealthy_threshold=2, healthy_threshold=2)
    e = Endpoint.parse("http://h:1/v1")
    apply_probe("c", e, False, hc)
    assert e.healthy  # one failed probe is not enough
    apply_probe("c", e, False, hc)
    assert not e.healthy
    apply_probe("c", e, True, hc)
    assert not e.healthy
    apply_probe("c", e, True, hc)
    assert e.healthy


def test_a_passing_probe_lifts_the_ejection_of_a_healthy_endpoint() -> None:
    rule = EjectionRule(consecutive_failures=1, base_s=30, max_s=300)
    e = Endpoint.parse("http://h:1/v1")
    e.outlier.failure(0.0, rule, True, "connect")
    apply_probe("c", e, True, HealthCheck(), rule, now=2.0)
    assert e.available(2.0)


async def test_clusters_sharing_a_url_are_each_probed(emulator: Any) -> None:
    """Issue #14: health checks were keyed by URL, so of two clusters on one server only the first one's
    endpoint was re-probed, and the other stayed down after the server came back."""
    server = await emulator()
    text = f"""
version: 1
clusters:
  a: {{kind: vllm, model: m, endpoints: ["{url(server)}"], health_check: {{interval_s: 1, metrics_interval_s: 0}}}}
  b: {{kind: vllm, model: m, endpoints: ["{url(server)}"], health_check: {{interval_s: 1, metrics_interval_s: 0}}}}
models:
  m: {{cluster: a}}
"""
    async with aiohttp.ClientSession() as s:
        upstreams = build_upstreams(compile_texts([("p.yaml", text)], env={}), s, EmulatedUpstreams(), env={})
        endpoints = [c.endpoints[0] for c in upstreams.clusters.values()]
        for e in endpoints:
            e.healthy = False
        checker = HealthChecker(s)
        checker.tick(upstreams)
        await asyncio.gather(*checker._running)
        assert all(e.healthy for e in endpoints)
        await checker.stop()


async def test_endpoints_without_health_checks_are_never_probed() -> None:
    text = """
version: 1
clusters:
  llama: {kind: openai, model: m, endpoints: ["http://127.0.0.1:9/v1"]}
models:
  m: {cluster: llama}
"""
    async with aiohttp.ClientSession() as s:
        upstreams = build_upstreams(compile_texts([("p.yaml", text)], env={}), s, EmulatedUpstreams(), env={})
        checker = HealthChecker(s)
        await checker.check_all(upstreams)
        checker.tick(upstreams)
        assert not checker._running
        assert upstreams.clusters["llama"].endpoints[0].healthy


def test_a_counter_that_went_back_counts_from_zero() -> None:
    from router.upstream.health import counted

    assert counted(None, 100.0, first=True) == 0  # the first scrape only sets the mark
    assert counted(None, 100.0) == 100  # a series new since the last scrape starts at 0
    assert counted(100.0, 150.0) == 50
    assert counted(150.0, 20.0) == 20  # the engine restarted
    assert counted(150.0, None) == 0


async def test_scrapes_report_what_the_pools_counters_served(emulator: Any) -> None:
    from router.emulator.app import STATE as EMU

    server = await emulator(model="m")
    emu = server.app[EMU]
    seen: list[tuple[int, int]] = []
    async with aiohttp.ClientSession() as s:
        endpoint = Endpoint.parse(url(server))
        await scrape(s, endpoint, HealthCheck(), lambda: 1.0, lambda i, o: seen.append((i, o)))
        emu.prompt_tokens.labels(model_name="m").inc(1200)
        emu.generation_tokens.labels(model_name="m").inc(300)
        await scrape(s, endpoint, HealthCheck(), lambda: 2.0, lambda i, o: seen.append((i, o)))
    assert seen == [(0, 0), (1200, 300)]


def test_uptime_counts_replicas_the_health_checks_find_up_by_tier() -> None:
    from router.upstream.health import uptime
    from tests.unit.pools import TIERED, compiled

    policy = compiled(TIERED)

    class Meter:
        def __init__(self) -> None:
            self.up_s: dict[tuple[str, str], float] = {}

        def served(self, cluster: str, prompt_tokens: int, generation_tokens: int) -> None:
            raise AssertionError("not a scrape")

        def up(self, cluster: str, tier: str, seconds: float) -> None:
            self.up_s[(cluster, tier)] = self.up_s.get((cluster, tier), 0.0) + seconds

    upstreams = build_upstreams(policy, None, EmulatedUpstreams(), None, {})  # type: ignore[arg-type]
    upstreams.clusters["pool"].endpoints[1].healthy = False  # reclaimed
    meter = Meter()
    uptime(upstreams, 2.0, meter)
    assert meter.up_s == {("pool", "spot"): 2.0, ("pool", "on-demand"): 2.0, ("other", "default"): 2.0}
