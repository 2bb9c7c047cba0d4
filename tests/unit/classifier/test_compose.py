"""The composed training rows: deterministic, every label present in every shape, grouped by instruction,
and the committed file is exactly what the hand-written pieces compose to."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from router.classifier.compose import SOURCE, compose, typos
from router.classifier.labels import TASKS

COMMITTED = Path(__file__).parents[3] / "router" / "classifier" / "data" / "authored-composed.jsonl"


def test_compose_is_deterministic_and_matches_the_committed_file() -> None:
    rows = compose()
    assert rows == compose()
    committed = [json.loads(line) for line in COMMITTED.read_text(encoding="utf-8").splitlines()]
    assert rows == committed, "run `router data compose` after editing data/authoring/"


def test_every_label_has_hundreds_of_rows_from_many_instructions() -> None:
    rows = compose()
    by_label = collections.Counter(r["label"] for r in rows)
    assert set(by_label) == set(TASKS)
    assert min(by_label.values()) >= 100
    groups = collections.defaultdict(set)
    for r in rows:
        groups[r["label"]].add(r["task"])
    assert min(len(g) for g in groups.values()) >= 25
    assert all(r["source"] == SOURCE and r["license"] == "Apache-2.0" for r in rows)


def test_rows_come_in_the_shapes_traffic_takes() -> None:
    rows = compose()
    system_instruction = [r for r in rows if r["messages"][0]["role"] == "system" and r["label"] == "summarization"]
    multi_turn = [r for r in rows if sum(m["role"] == "user" for m in r["messages"]) >= 2]
    follow_ups = [r for r in multi_turn if r["messages"][-1]["content"] in ("another one please", "go on")]
    foreign = [r for r in rows if r["task"].startswith("composed-foreign:")]
    assert system_instruction
    assert multi_turn
    assert follow_ups
    assert foreign
    # a follow-up keeps the conversation's task: only the earlier turn says what it is
    assert {r["label"] for r in follow_ups} <= set(TASKS[TASKS.index("open_qa") :])  # the open labels


def test_typos_lowercase_and_perturb_some_words() -> None:
    import random

    out = typos("Summarize the Following Document Carefully.", random.Random(3))
    assert out == out.lower()
    assert not out.endswith(".")
    assert len(out.split()) == 5
