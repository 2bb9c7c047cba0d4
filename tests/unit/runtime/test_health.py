from typing import Any

import aiohttp

from router.runtime.clusters import Endpoint
from router.runtime.health import health_url, probe
from tests.conftest import url


def test_health_url_is_at_the_server_root() -> None:
    assert health_url(Endpoint.parse("http://h:8000/v1")) == "http://h:8000/health"
    assert health_url(Endpoint.parse("http://h:8000")) == "http://h:8000/health"


async def test_probe(emulator: Any) -> None:
    server = await emulator()
    async with aiohttp.ClientSession() as s:
        assert await probe(s, Endpoint.parse(url(server)))
        assert not await probe(s, Endpoint.parse("http://127.0.0.1:9/v1"), timeout_s=0.5)
