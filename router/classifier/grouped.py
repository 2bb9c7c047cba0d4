"""The task head judged on data it never saw (issue #16): cross-validation whose folds are whole groups
(a dataset, or a task definition), beside the usual split by text hash. A random split shares each
source's style and templates between training and test and overstates what new traffic will see.

``router eval --group-by source`` leaves one source out at a time; ``--group-by task`` keeps the
instances of one task definition together (rows without a definition stay in training), in ``k`` folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from router.classifier.model import TASKS, blocks
from router.classifier.rows import Row, fold_ids
from router.classifier.scores import TaskScores, task_scores
from router.classifier.train import TASK_WEIGHTS, Vectors, fit_task, folds, full_logits
from router.classifier.tune import TuneSettings, fine_tune

__all__ = ["GROUPINGS", "Yardstick", "fold_ids", "group_of", "out_of_fold", "yardstick"]

GROUPINGS = ("source", "task")
RANDOM_FOLDS = 5


@dataclass(frozen=True)
class Yardstick:
    """The same rows scored two ways: folds by text hash (random) and folds by group (unseen)."""

    grouping: str
    groups: int
    random: TaskScores
    grouped: TaskScores
    tuned: bool = False  # grouped: the encoder's top layers fine-tuned anew for every fold

    def render(self) -> str:
        how = (
            "grouped: each row scored by a head and an encoder tuned without its group; random: untuned encoder"
            if self.tuned
            else "grouped: each row scored by a head that never saw its group; untuned encoder"
        )
        lines = [
            f"task head: {RANDOM_FOLDS}-fold split by text hash (random) against {self.groups} groups by "
            f"{self.grouping} ({how})",
            f"  {'':<17} {'random':>8} {'grouped':>8}  n",
            f"  {'accuracy':<17} {self.random.accuracy:>8.3f} {self.grouped.accuracy:>8.3f}",
            f"  {'macro-F1':<17} {self.random.macro_f1:>8.3f} {self.grouped.macro_f1:>8.3f}",
        ]
        for label in self.grouped.f1:
            lines.append(
                f"  {label:<17} {self.random.f1.get(label, 0.0):>8.3f} {self.grouped.f1[label]:>8.3f}  "
                f"{self.grouped.support[label]}"
            )
        return "\n".join([*lines, "", f"grouped by {self.grouping}:", self.grouped.render()])


def group_of(row: Row, grouping: str) -> str | None:
    """The group a row is held out with; None: never held out (kept in every training fold)."""
    if grouping == "source":
        return row.source
    return row.group or None


def out_of_fold(x: Any, y: Sequence[str], fold: NDArray[np.int64]) -> list[str]:
    """Each held-out row's prediction by a head trained on every other fold (rows at -1: never held out,
    their 'prediction' is their label and they are left out of the scores by the caller)."""
    pred = list(y)
    for f in sorted(set(fold.tolist()) - {-1}):
        test = fold == f
        train_y = [y[int(i)] for i in np.nonzero(~test)[0]]
        if len(set(train_y)) == 1:  # a single label left to learn: it is every prediction
            for i in np.nonzero(test)[0]:
                pred[i] = train_y[0]
            continue
        logits = full_logits(fit_task(x[~test], train_y), x[test])
        for i, j in zip(np.nonzero(test)[0], logits.argmax(axis=1), strict=True):
            pred[i] = TASKS[j]
    return pred


def tuned_out_of_fold(rows: Sequence[Row], y: Sequence[str], fold: NDArray[np.int64], tune: TuneSettings) -> list[str]:
    """As :func:`out_of_fold`, with the encoder's top layers fine-tuned on each fold's training rows first
    (minutes per fold): the only honest grouped figure for a tuned encoder, which has seen every row it
    was tuned on."""
    from router.classifier.encoder import SentenceEncoder

    pred = list(y)
    views = [r.view for r in rows]
    for f in sorted(set(fold.tolist()) - {-1}):
        test = fold == f
        train_idx = [int(i) for i in np.nonzero(~test)[0]]
        if len({y[i] for i in train_idx}) == 1:  # a single label left to learn: it is every prediction
            for i in np.nonzero(test)[0]:
                pred[i] = y[train_idx[0]]
            continue
        encoder = SentenceEncoder(layers=None)
        fine_tune(encoder.model, [views[i].embed_text for i in train_idx], [y[i] for i in train_idx], tune)
        x = blocks(encoder.encode([v.embed_text for v in views]), views).stack(TASK_WEIGHTS)
        logits = full_logits(fit_task(x[~test], [y[i] for i in train_idx]), x[test])
        for i, j in zip(np.nonzero(test)[0], logits.argmax(axis=1), strict=True):
            pred[i] = TASKS[j]
    return pred


def yardstick(
    rows: Sequence[Row], vectors: Vectors, grouping: str, k: int | None = None, tune: TuneSettings | None = None
) -> Yardstick:
    if grouping not in GROUPINGS:
        raise ValueError(f"group by one of {', '.join(GROUPINGS)}, not {grouping!r}")
    task_rows = [r for r in rows if r.label is not None]
    if not task_rows:
        raise ValueError("no rows with a `label` to evaluate")
    x = blocks(vectors(task_rows), [r.view for r in task_rows]).stack(TASK_WEIGHTS)
    y = [r.label or "" for r in task_rows]
    groups = [group_of(r, grouping) for r in task_rows]
    held = [i for i, g in enumerate(groups) if g is not None]
    if not held:
        raise ValueError(f"no row carries a {grouping} to group by")
    grouped_fold = fold_ids(groups, k if grouping == "task" else None)
    if tune is not None:
        grouped = tuned_out_of_fold(task_rows, y, grouped_fold, tune)
    else:
        grouped = out_of_fold(x, y, grouped_fold)
    random = out_of_fold(x, y, folds(task_rows, RANDOM_FOLDS))
    pick = [y[i] for i in held]
    return Yardstick(
        grouping,
        len({g for g in groups if g is not None}),
        task_scores(TASKS, pick, [random[i] for i in held]),
        task_scores(TASKS, pick, [grouped[i] for i in held]),
        tuned=tune is not None,
    )
