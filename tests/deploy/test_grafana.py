"""The shipped Grafana dashboard: well-formed, the north-star panel first, every query on a metric the
router (or vLLM) exports. That each query returns data is tests/integration/test_prometheus.py's job."""

from __future__ import annotations

import json
import re
from pathlib import Path

from router.telemetry import names

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "router.json"


def test_the_dashboard_is_well_formed_and_leads_with_cost() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] == "hybrid-llm-router"
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    first = panels[0]
    assert "cost per 1K tokens" in first["title"]
    assert any("baseline" in t["expr"] for t in first["targets"])
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["targets"], p["title"]
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    assert [v["name"] for v in doc["templating"]["list"]] == ["datasource"]


def test_every_query_uses_known_metrics() -> None:
    known = {v for k, v in vars(names).items() if k.startswith("M_")}
    vllm = {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"}
    doc = json.loads(DASHBOARD.read_text())
    for p in doc["panels"]:
        for t in p.get("targets", []):
            for metric in re.findall(r"(?<![\w:])(?:router_[a-z0-9_]+|vllm:[a-z_]+)", t["expr"]):
                base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
                assert base in known or metric in vllm, f"{p['title']}: unknown metric {metric}"
