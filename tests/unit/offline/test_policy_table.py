"""``router eval --policies``: evaluation rows routed by the bundled policy, by id from their files."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from router.classifier.predict import ClassifierModel
from router.classifier.rows import read_rows
from router.offline.policy_table import PolicyTable
from router.policy.compile import load_policy

ROOT = Path(__file__).parents[3]


def test_rows_are_routed_by_the_whole_policy(tmp_path: Path, classifier_model: ClassifierModel) -> None:
    data = tmp_path / "rows.jsonl"
    prompts = [
        "Write a Python function that merges two sorted lists.",
        "Summarise in one line: the meeting moved from Monday to Tuesday at 10.",
        "Translate to French: where is the station?",
    ]
    data.write_bytes(b"\n".join(orjson.dumps({"messages": [{"role": "user", "content": p}]}) for p in prompts))
    rows = read_rows([data])
    table = PolicyTable(load_policy(ROOT / "policies"), "policies")
    text = table.render([data], rows, classifier_model, {})
    assert "rule 'hard-instance'" in text
    assert "without the rule: 33.3%" in text  # the coding request goes to the frontier whatever the threshold
    with pytest.raises(ValueError, match="'pinned-or-missing' is not a rule-routed model alias"):
        PolicyTable(table.policy, "policies", model="pinned-or-missing").render([data], rows, classifier_model, {})
