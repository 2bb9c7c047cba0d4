"""The admin listener's app: the operators' endpoints over the public app's state and ledger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from router.http.app import create_app
from router.http.serve import create_admin_app
from tests.unit.http.test_app import _closed_port, _settings

Client = TestClient[Any, Any]


async def test_the_admin_listener_serves_what_the_public_one_no_longer_does(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    app = create_app(_settings(tmp_path, admin_port=_closed_port()), env={})
    public = await aiohttp_client(app)
    admin = await aiohttp_client(create_admin_app(app))
    for path in ("/metrics", "/v1/admin/clusters", "/v1/admin/usage"):
        assert (await public.get(path)).status == 404, path
        assert (await admin.get(path)).status == 200, path
