"""The shipped alert rules parse and refer only to metrics the router emits."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from router.telemetry import names

ALERTS = Path(__file__).parents[3] / "deploy" / "prometheus" / "alerts.yaml"


def test_alert_rules_use_known_metrics() -> None:
    doc = yaml.safe_load(ALERTS.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {
        "RouterClassifierDown",
        "RouterClassifierFallbacks",
        "RouterClassifySlow",
        "RouterPoolDegraded",
        "RouterEndpointFlapping",
        "RouterSpillingOver",
        "RouterNoUpstream",
        "RouterStateStoreDown",
        "RouterBudgetDenying",
    }
    known = {v for k, v in vars(names).items() if k.startswith("M_")}
    for rule in rules:
        assert rule["for"]
        assert rule["labels"]["severity"] in ("page", "ticket")
        for metric in re.findall(r"\brouter_[a-z0-9_]+", rule["expr"]):
            base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
            assert base in known, f"{rule['alert']}: unknown metric {metric}"


def test_recording_rules_use_known_metrics() -> None:
    doc = yaml.safe_load((ALERTS.parent / "recording.yaml").read_text())
    known = {v for k, v in vars(names).items() if k.startswith("M_")}
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        for metric in re.findall(r"(?<![:\w])router_[a-z0-9_]+", rule["expr"]):
            base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
            assert base in known, f"{rule['record']}: unknown metric {metric}"
