"""Faults under load (see tests/integration/chaos.py): every request is answered while any good target
remains, ejection and re-admission happen, spill-over reaches the frontier, and with nothing left the
answer is a fast 503 with Retry-After."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.chaos import CLIENTS, POOL_LIMIT, Phase, Stack, report, run, run_tiers
from tests.integration.conftest import Spawn

pytestmark = pytest.mark.integration


def ejected_or_down(pool: Any, url: str) -> bool:
    e = next(e for e in pool["endpoints"] if e["url"] == url)
    return bool(e["state"] in ("ejected", "down"))


async def test_faults_under_load(spawn: Spawn, tmp_path: Path) -> None:
    stack = Stack(spawn, tmp_path)
    phases = await run(stack)
    print("\n" + report(phases))
    by = {p.name.split(" (")[0]: p for p in phases}
    steady, kill, errors, recover, slow, full, pool_down, nothing, _restarting, recovered = phases
    urls = [f"http://127.0.0.1:{p}/v1" for p in stack.replicas]

    for p in (steady, kill, errors, recover, slow, full, pool_down, recovered):
        assert p.failures == 0, p.row()  # a good target remained: nobody noticed
        assert p.sent > 100, p.row()  # and the load was real
    for p in phases:
        assert p.cut_uncleanly == 0, p.row()  # a broken stream always ends with an error event and [DONE]
        assert p.no_retry_after == 0, p.row()
        assert "timeout" not in p.failed, p.row()  # never a hang
    assert steady.clusters.keys() == {"pool"}
    assert ejected_or_down(stack.notes["after kill"], urls[0])
    after_500s = stack.notes["after 500s"]
    e1 = next(e for e in after_500s["endpoints"] if e["url"] == urls[1])
    assert e1["state"] == "ejected"
    assert e1["last_ejection_reason"] == "http_500"
    attempts = stack.notes["slow attempts"]
    assert isinstance(attempts, dict)
    assert attempts[urls[2]] < min(attempts[urls[0]], attempts[urls[1]]) / 2  # least loaded avoids the slow one
    recovered_pool = stack.notes["after recovery"]
    assert all(e["state"] == "up" for e in recovered_pool["endpoints"])  # re-admitted: 1 after its ejection
    assert attempts[urls[0]] > 0  # 0 back after its restart
    assert full.clusters["api"] > 0  # past the pool's limit: spill-over to the frontier
    # All to the frontier, but for requests the pool had already answered when the kills landed.
    assert pool_down.clusters["pool"] <= POOL_LIMIT
    assert pool_down.clusters["api"] > 0
    assert nothing.ok <= CLIENTS  # only requests answered in the instant before the frontier died
    assert set(nothing.failed) <= {"502", "503", "504"}
    assert nothing.failed["503"] > nothing.failed["502"] + nothing.failed["504"]  # mostly the fast 503
    assert recovered.clusters["pool"] > 0.9 * recovered.ok  # traffic is back on the pool
    assert isinstance(by["steady"], Phase)


async def test_spot_tier_first_and_reclaimed_spot_replicas_cost_no_request(spawn: Spawn, tmp_path: Path) -> None:
    stack = Stack(spawn, tmp_path)
    phases = await run_tiers(stack)
    print("\n" + report(phases))
    spot = [f"http://127.0.0.1:{p}/v1" for p in stack.replicas[:2]]
    on_demand = f"http://127.0.0.1:{stack.replicas[2]}/v1"
    for p in phases:
        assert p.failures == 0, p.row()  # a reclaimed replica is a failed endpoint: retried elsewhere
        assert p.cut_uncleanly == 0, p.row()
        assert p.sent > 50, p.row()
    assert stack.notes["tiers"] == {spot[0]: "spot", spot[1]: "spot", on_demand: "on-demand"}  # router status
    up, one_gone, all_gone, back = (stack.notes[p.name] for p in phases)
    assert up[on_demand] == 0, up  # healthy spot takes everything
    assert sum(up[u] for u in spot) > 50
    # Spot half gone: 50 % healthy x 1.4 -> about 70 % stays on spot, the rest spills on demand.
    assert one_gone[on_demand] > 0, one_gone
    assert one_gone[spot[1]] > one_gone[on_demand], one_gone
    assert all_gone[on_demand] > 50, all_gone
    assert all_gone[spot[1]] <= 2 * CLIENTS, all_gone  # only what was in flight as it died, and its retries
    assert back[on_demand] < 0.1 * sum(back.values()), back  # back on the cheap tier
