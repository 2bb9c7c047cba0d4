from typing import Any

import aiohttp

from router.policy.schema import HealthCheck
from router.upstream.endpoints import Endpoint
from router.upstream.health import apply_probe, health_url, probe, scrape
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
