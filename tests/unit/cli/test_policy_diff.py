"""``router policy diff`` on the bundled policy and the shipped held-out prompts (what CI runs): a lower
complexity threshold sends more to the frontier, and a threshold on that share fails the command."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from router.cli.main import main

ROOT = Path(__file__).parents[3]
SAMPLE = ROOT / "router" / "classifier" / "data" / "heldout-tasks.jsonl"


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled policy with the hard-instance rule's threshold lowered from 0.50 to 0.35."""
    out = tmp_path_factory.mktemp("policy") / "policies"
    shutil.copytree(ROOT / "policies", out)
    text = (out / "default.yaml").read_text()
    assert "min_complexity: 0.50" in text
    (out / "default.yaml").write_text(text.replace("min_complexity: 0.50", "min_complexity: 0.35"))
    return out


def test_the_diff_names_what_moves_and_a_threshold_fails_it(
    lowered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["policy", "diff", str(ROOT / "policies"), str(lowered), "--traffic", str(SAMPLE), "--json"]
    assert main(args) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["requests"] == doc["with_text"] == 489
    assert doc["new"]["frontier_share"] > doc["old"]["frontier_share"]
    assert doc["changed"]
    assert all(c["new"][0] == "hard-instance" for c in doc["changed"])  # only that rule's reach changed
    assert doc["new"]["route_mix"]["hard-instance"] - doc["old"]["route_mix"]["hard-instance"] == len(doc["changed"])
    share = doc["new"]["frontier_share"]
    assert main([*args, "--max-frontier-share", f"{share - 0.01:.2f}"]) == 1
    assert "threshold: frontier share" in capsys.readouterr().err
    assert main([*args, "--max-frontier-share", f"{share + 0.01:.2f}", "--max-changed", "50%"]) == 0


def test_unreadable_traffic_or_a_bad_policy_cannot_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text("{nope\n")
    assert main(["policy", "diff", str(ROOT / "policies"), str(ROOT / "policies"), "--traffic", str(bad)]) == 2
    assert "no request could be read" in capsys.readouterr().err
    broken = ROOT / "tests" / "fixtures" / "policies" / "bad" / "unknown-cluster.yaml"
    assert main(["policy", "diff", str(ROOT / "policies"), str(broken), "--traffic", str(SAMPLE)]) == 2
    assert "unknown cluster 'poool'" in capsys.readouterr().err
