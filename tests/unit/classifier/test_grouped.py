"""The grouped yardstick (issue #16): folds are whole groups, so a head never sees the source (or task
definition) it is scored on; with stand-in vectors, so the test is about the splits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from router.classifier.grouped import fold_ids, group_of, yardstick
from router.classifier.rows import Row
from router.classifier.text import prompt_view
from tests.unit.classifier.test_train import vectors


def _rows() -> list[Row]:
    """Two sources with their own style: `alpha` asks for code and sums in one voice, `beta` in another;
    `beta` alone has translation."""
    rows = []
    for i in range(40):
        rows.append(Row(f"a{i}", prompt_view([{"role": "user", "content": f"alpha code task {i}: write a function"}]),
                        "alpha", "coding"))  # fmt: skip
        rows.append(Row(f"m{i}", prompt_view([{"role": "user", "content": f"alpha sum task {i}: add 3 and {i}"}]),
                        "alpha", "math"))  # fmt: skip
        rows.append(Row(f"b{i}", prompt_view([{"role": "user", "content": f"Please, dear model, parse {i}"}]),
                        "beta", "coding"))  # fmt: skip
        rows.append(Row(f"t{i}", prompt_view([{"role": "user", "content": f"Please, dear model, {i} in French"}]),
                        "beta", "translation"))  # fmt: skip
    return rows


def test_folds_are_whole_groups_and_ungrouped_rows_always_train() -> None:
    groups = ["a", "b", None, "a", "c", None]
    loo = fold_ids(groups, None)
    assert loo.tolist()[2] == loo.tolist()[5] == -1
    assert loo[0] == loo[3]
    assert len({loo[0], loo[1], loo[4]}) == 3
    hashed = fold_ids(groups, 2)
    assert hashed[0] == hashed[3]
    assert set(hashed.tolist()) <= {-1, 0, 1}


def test_a_label_only_one_source_has_cannot_be_learnt_from_the_others() -> None:
    result = yardstick(_rows(), vectors, "source")
    assert result.groups == 2
    assert result.random.f1["translation"] > 0.9  # a random split has seen beta's translations
    assert result.grouped.f1["translation"] == 0.0  # left out with beta, it was never seen
    assert result.grouped.macro_f1 < result.random.macro_f1
    text = result.render()
    assert "random" in text
    assert "grouped by source:" in text
    assert "confusion" in text


def test_grouping_by_task_needs_rows_that_carry_a_definition() -> None:
    rows = _rows()
    with pytest.raises(ValueError, match="no row carries a task"):
        yardstick(rows, vectors, "task")
    tagged = [replace(r, group=f"def-{i % 6}") if r.source == "beta" else r for i, r in enumerate(rows)]
    assert group_of(tagged[0], "task") is None
    result = yardstick(tagged, vectors, "task", k=3)
    assert result.groups == 6
    assert sum(result.grouped.support.values()) == 80  # only the rows with a definition are scored
    with pytest.raises(ValueError, match="group by one of"):
        yardstick(rows, vectors, "colour")
    assert np.isfinite(result.grouped.macro_f1)


def test_a_tuned_encoder_is_judged_with_one_tuned_anew_per_fold() -> None:
    """Fine-tuning the real encoder on the fold's training rows (one layer, one epoch: seconds)."""
    from router.classifier.tune import TuneSettings

    rows = [replace(r, group=f"def-{i % 4}") for i, r in enumerate(_rows()[::3])]
    result = yardstick(rows, vectors, "task", k=2, tune=TuneSettings(depth=3, layers=1, epochs=1, batch=8))
    assert result.tuned
    assert "encoder tuned without its group" in result.render()
    assert sum(result.grouped.support.values()) == len(rows)
