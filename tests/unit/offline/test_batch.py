"""``router classify``'s contract: one output line per input line, in order; bad lines get error records."""

from __future__ import annotations

from pathlib import Path

import orjson

from router.classifier.predict import ClassifierModel
from router.offline.batch import classify_file
from router.offline.router import OfflineRouter
from router.policy.compile import load_policy

POLICIES = Path(__file__).parents[3] / "policies"


def test_classify_file(tmp_path: Path, classifier_model: ClassifierModel) -> None:
    src = tmp_path / "in.jsonl"
    lines = [
        {"id": "a", "messages": [{"role": "user", "content": "Translate into Italian: good evening"}], "extra": 1},
        "not json at all",
        {"id": "b"},
        {"messages": [{"role": "user", "content": "no id"}]},
        {"id": "c", "messages": [{"role": "robot", "content": "x"}]},
        {"id": 7, "messages": [{"role": "user", "content": "Write a haiku about autumn."}], "model": "small"},
        [1, 2],
    ]
    src.write_bytes(b"\n".join(x.encode() if isinstance(x, str) else orjson.dumps(x) for x in lines) + b"\n\n")
    dst = tmp_path / "out.jsonl"
    stats = classify_file(OfflineRouter(load_policy(POLICIES, env={}), classifier_model), src, dst)
    out = [orjson.loads(line) for line in dst.read_bytes().splitlines()]
    assert (stats.lines, stats.ok, stats.errors) == (7, 2, 5)
    assert [o.get("id") for o in out] == ["a", None, "b", None, "c", 7, None]
    assert set(out[0]) == {"id", "task", "task_confidence", "complexity", "route", "cluster", "rule"}
    assert (out[0]["task"], out[0]["route"], out[0]["cluster"], out[0]["rule"]) == (
        "translation",
        "translation",
        "small-8b",
        "translation",
    )
    assert out[1] == {"id": None, "line": 2, "error": out[1]["error"]}
    assert "not valid JSON" in out[1]["error"]
    assert out[2]["error"] == "missing `messages`"
    assert out[3]["error"] == "missing `id`"
    assert "messages[0].role" in out[4]["error"]
    assert (out[5]["route"], out[5]["rule"]) == ("model:small", None)  # a line may name its alias
    assert out[6]["line"] == 7
