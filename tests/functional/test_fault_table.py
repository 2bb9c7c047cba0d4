"""Issue #14's table: every fault of the fault upstream, streamed and not, through a policy whose clusters
share one URL and through one where each has its own, for vLLM and frontier clusters (tests/fault_table.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fault_table import Row, policy, render, run_all
from tests.faults import STATE, fault_app

RESCUED = {
    "fb-429-ra",
    "fb-429",
    "fb-500-once",
    "fb-503",
    "fb-reset",
    "fb-hang",
    "fb-slow-first",
    "fb-no-done",
    "fb-context",
}


async def _table(aiohttp_server: Any, proxy: Any, shape: str, kind: str) -> list[Row]:
    server = await aiohttp_server(fault_app())
    client = await proxy(policy(f"http://127.0.0.1:{server.port}/v1", shape, kind))
    return await run_all(client, server.app[STATE])


@pytest.mark.parametrize("kind", ["vllm", "frontier"])
async def test_every_fault_is_rescued_or_a_clean_error_whatever_the_urls(
    aiohttp_server: Any, proxy: Any, kind: str
) -> None:
    shared = await _table(aiohttp_server, proxy, "shared", kind)
    separate = await _table(aiohttp_server, proxy, "separate", kind)
    print(f"\n{kind}, shared URL\n" + render(shared) + f"\n\n{kind}, separate URLs\n" + render(separate))
    assert [(r.fault, r.stream, r.outcome) for r in shared] == [(r.fault, r.stream, r.outcome) for r in separate]
    assert not [r for r in shared + separate if r.outcome == "TRUNCATED"]
    rescued = {(r.fault, r.stream) for r in shared if r.outcome == "rescued"}
    assert {(f, s) for f in RESCUED for s in (False, True)} <= rescued
    assert all(r.seconds < 6 for r in shared + separate)  # bounded, whatever the fault
