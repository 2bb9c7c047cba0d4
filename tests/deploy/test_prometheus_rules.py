"""The alerting and recording rules load in Prometheus's own checker, and pass their unit tests
(``promtool test rules``: each alert quiet on healthy series, firing with its labels and annotations once
its condition held for its ``for:``; each recording rule's value)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (deploy/dev.sh test installs Debian's prometheus package)")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False, timeout=120, cwd=RULES)


def test_rules_load() -> None:
    out = promtool("check", "rules", "alerts.yaml", "recording.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(RULES)) for p in (RULES / "tests").glob("*.test.yaml"))
    assert tests == ["tests/alerts.test.yaml", "tests/recording.test.yaml"]
    out = promtool("test", "rules", *tests)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    import yaml

    alerts = {r["alert"] for g in yaml.safe_load((RULES / "alerts.yaml").read_text())["groups"] for r in g["rules"]}
    doc = yaml.safe_load((RULES / "tests" / "alerts.test.yaml").read_text())
    fired = {c["alertname"] for t in doc["tests"] for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert alerts == fired
