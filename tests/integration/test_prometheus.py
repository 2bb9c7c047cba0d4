"""The dashboard and the rules, proven against a real Prometheus (see tests/integration/observed.py):
three proxy replicas and the emulated upstreams are scraped under a short load; every dashboard query and
every rule (each alert's operands, each recorded series) must return data through Prometheus's HTTP API,
and every rule must evaluate without error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Spawn
from tests.integration.observed import Stack, dashboard_queries, empty_queries, load, rule_queries

pytestmark = pytest.mark.integration


async def test_every_panel_and_rule_has_data(spawn: Spawn, tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (deploy/dev.sh test installs Debian's package)")
    stack = Stack(spawn, tmp_path)
    try:
        stack.start()
        statuses = await load(stack, 12)
        assert {"200", "401", "429", "503"} <= statuses.keys(), statuses
        queries = dashboard_queries()
        assert len(queries) >= 30
        missing = empty_queries(stack, queries + rule_queries(), within_s=45)
        assert not missing, "without data:\n" + "\n".join(f"  {name}: {q}" for name, q in missing)
        groups = stack.api_get("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == len({n for n, _ in rule_queries()})
        broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not broken, broken
        up = stack.query('up{job="router"} == 1')
        assert len(up) == 3  # every replica scraped, with the admin key
    finally:
        stack.stop()
