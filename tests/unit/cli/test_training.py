"""``router eval`` reads a complexity threshold against the bundled policy's whole rule set by default."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from router.cli.main import main

ROOT = Path(__file__).parents[3]


def test_eval_prints_the_whole_policy_table_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "sample.jsonl"
    prompts = ["Write a Python function that reverses a list.", "Translate to German: good morning", "hi there"]
    data.write_bytes(b"\n".join(orjson.dumps({"messages": [{"role": "user", "content": p}]}) for p in prompts))
    monkeypatch.chdir(ROOT)  # ./policies is the bundled policy
    assert main(["eval", "--data", str(data), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "== min_complexity of rule 'hard-instance' against the share of ALL requests" in out
    assert "== the complexity score alone" in out
    assert main(["eval", "--data", str(data), "--no-cache", "--no-policy"]) == 0
    assert "share of ALL requests" not in capsys.readouterr().out
    missing = ["eval", "--data", str(data), "--no-cache", "--policies", str(ROOT / "policies"), "--rule", "nope"]
    assert main(missing) == 1
    assert "no rule named 'nope'" in capsys.readouterr().err
