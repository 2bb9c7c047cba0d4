"""Training and evaluation of the heads (scikit-learn), for ``router train`` and ``router eval``.

Task head: multinomial logistic regression, class weights balanced, over the three feature blocks; its
temperature is fitted on out-of-fold logits. Complexity head: logistic regression predicting
P(weak model wrong) on the strong/weak rows. Rows are de-duplicated by normalised text and every split
is made by a hash of that text, so a prompt never sits on both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from router.classifier.difficulty import HARD_SOURCES, QUANTITATIVE_SOURCES, Fitted, fit_family, source_apgr
from router.classifier.model import (
    TASKS,
    Blocks,
    FeatureWeights,
    Heads,
    Matrix,
    blocks,
    softmax,
)
from router.classifier.rows import Row
from router.classifier.scores import CostQuality, TaskScores, cost_quality, task_scores

Vectors = Callable[[Sequence["Row"]], Matrix]
# Chosen by 5-fold cross-validation (see docs/classification.md, "Classifier quality"): the instruction block (the first
# and last words of the request) matters most for the narrow tasks; prompt structure and length for complexity.
TASK_WEIGHTS = FeatureWeights(embedding=1.0, lexical=1.0, structure=0.5, instruction=3.0)
TASK_C = 4.0
NARROW_TASKS = ("summarization", "extraction", "classification", "closed_qa", "translation", "rewriting")
# What a frontier model adds over a fine-tuned 8B model, by task (0: nothing, 1: most). Judge studies of
# strong against weak models (MT-Bench's categories, RouteLLM) find the gap widest on coding, math,
# reasoning and extraction, narrowest on writing, brainstorming and general knowledge; the narrow
# rewriting/summarizing tasks are what the self-hosted pool is tuned for. The task-aware score mixes this
# prior, weighted by the predicted task distribution, with the difficulty head (GAIN_MIX of it).
TASK_GAIN = {
    "summarization": 0.2,
    "extraction": 0.6,
    "classification": 0.3,
    "closed_qa": 0.3,
    "translation": 0.3,
    "rewriting": 0.1,
    "open_qa": 0.3,
    "brainstorming": 0.2,
    "creative_writing": 0.3,
    "coding": 0.9,
    "math": 0.9,
    "reasoning": 0.8,
}
GAIN_MIX = 0.3  # 0.5 moved the open-ended AUC by +0.006 and cost MMLU 0.01 APGR (docs/classification.md)


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)


def fit_task(x: Any, y: Sequence[str]) -> LogisticRegression:
    clf = LogisticRegression(C=TASK_C, class_weight="balanced", max_iter=3000)
    clf.fit(x, list(y))
    return clf


def full_logits(clf: LogisticRegression, x: Any) -> NDArray[np.float64]:
    """Logits over all TASKS (labels absent from a training fold get -inf)."""
    out = np.full((x.shape[0], len(TASKS)), -1e9)
    part = clf.decision_function(x)
    if part.ndim == 1:  # two labels in training: one score, for the second against the first
        part = np.stack([np.zeros_like(part), part], axis=1)
    for j, label in enumerate(clf.classes_):
        out[:, TASKS.index(label)] = part[:, j]
    return out


def fit_temperature(logits: NDArray[np.float64], y: Sequence[str]) -> float:
    idx = np.array([TASKS.index(label) for label in y])
    best, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.2), np.log(5.0), 60)):
        p = softmax(logits / t)[np.arange(len(idx)), idx]
        nll = float(-np.mean(np.log(np.clip(p, 1e-12, 1))))
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def folds(rows: Sequence[Row], k: int) -> NDArray[np.int64]:
    return np.array([int(r.split_key[:8], 16) % k for r in rows])


def _task_head(
    xt: Any, y: list[str], fold: NDArray[np.int64], k: int, report: Report, calibrate: NDArray[np.bool_] | None = None
) -> tuple[Any, Any, float]:
    """``calibrate``: the rows the temperature is fitted on (with a tuned encoder, only those it never saw:
    on the rest its embeddings are too well separated and the confidence would be too high)."""
    oof = np.zeros((len(y), len(TASKS)))
    for f in range(k):
        test = fold == f
        clf = fit_task(xt[~test], [y[i] for i in np.nonzero(~test)[0]])
        oof[test] = full_logits(clf, xt[test])
    pick = np.ones(len(y), dtype=bool) if calibrate is None else calibrate
    temperature = fit_temperature(oof[pick], [y[i] for i in np.nonzero(pick)[0]])
    cv = task_scores(TASKS, y, [TASKS[i] for i in oof.argmax(axis=1)])
    report.add(
        f"task head: {len(y)} rows, {k}-fold CV split by text hash (by task definition where given), "
        f"temperature {temperature:.2f} (fitted on {int(pick.sum())} rows)",
        cv.render(),
    )
    if calibrate is not None:
        unseen = task_scores(TASKS, [y[i] for i in np.nonzero(pick)[0]], [TASKS[i] for i in oof[pick].argmax(axis=1)])
        report.add("  ... of which the rows the tuned encoder never saw:", unseen.render())
    final = fit_task(xt, y)
    coef = np.zeros((len(TASKS), xt.shape[1]))
    intercept = np.full(len(TASKS), -1e9)
    for j, label in enumerate(final.classes_):
        coef[TASKS.index(label)] = final.coef_[j]
        intercept[TASKS.index(label)] = final.intercept_[j]
    return coef, intercept, temperature


def train(
    rows: Sequence[Row],
    vectors: Vectors,
    report: Report,
    k: int = 5,
    encoder: str = "base",
    calibration: frozenset[str] | None = None,
) -> Heads:
    """``calibration``: ids of the task rows the temperature is fitted on (default: all)."""
    task_rows = [r for r in rows if r.label is not None]
    sw_rows = [r for r in rows if r.strong is not None and r.weak is not None]
    if not task_rows or not sw_rows:
        raise ValueError("training needs rows with `label` and rows with `strong_correct`/`weak_correct`")
    bt = blocks(vectors(task_rows), [r.view for r in task_rows])
    y = [r.label or "" for r in task_rows]
    calibrate = None if calibration is None else np.array([r.id in calibration for r in task_rows])
    coef, intercept, temperature = _task_head(bt.stack(TASK_WEIGHTS), y, folds(task_rows, k), k, report, calibrate)
    prior = [r for r in task_rows if r.source in HARD_SOURCES or r.label in NARROW_TASKS]
    bs = blocks(vectors(sw_rows), [r.view for r in sw_rows])
    quant = [i for i, r in enumerate(sw_rows) if r.source in QUANTITATIVE_SOURCES]
    rest = [i for i, r in enumerate(sw_rows) if r.source not in QUANTITATIVE_SOURCES]
    general = fit_family(
        [sw_rows[i] for i in rest], bs.take(rest), prior, blocks(vectors(prior), [r.view for r in prior]), k
    )
    math = fit_family([sw_rows[i] for i in quant], bs.take(quant), [], None, k) if quant else None
    heads = Heads(
        labels=TASKS,
        task_coef=coef,
        task_intercept=intercept,
        temperature=temperature,
        task_weights=TASK_WEIGHTS,
        complexity=general.head,
        complexity_math=math.head if math else None,
        task_gain=tuple(TASK_GAIN[t] for t in TASKS),
        gain_mix=GAIN_MIX,
        meta={
            "task_rows": len(task_rows),
            "complexity_rows": len(sw_rows),
            "complexity_prior_rows": len(prior),
            "encoder": encoder,
        },
    )
    _report_difficulty(heads, sw_rows, bs, [(general, rest), *([(math, quant)] if math else [])], report)
    return heads


def _report_difficulty(
    heads: Heads, rows: Sequence[Row], b: Blocks, families: list[tuple[Fitted, list[int]]], report: Report
) -> None:
    """Grouped (MMLU by subject) out-of-fold APGR per source: the difficulty alone, then mixed with the
    task gain as served (the task probabilities come from the final task head)."""
    oof = np.zeros(len(rows))
    for fitted, idx in families:
        oof[idx] = fitted.oof
        report.add(
            f"complexity, {len(idx)} rows of {', '.join(sorted({rows[i].source for i in idx}))}: grouped "
            "mean per-source APGR by length weight: " + ", ".join(f"{w}: {a:.3f}" for w, a in fitted.by_length.items())
        )
    probs = softmax(heads.task_logits(b) / heads.temperature)
    mixed = (1 - heads.gain_mix) * oof + heads.gain_mix * (probs @ np.asarray(heads.task_gain))
    for name, scores in (("difficulty", oof), ("served (with task gain)", mixed)):
        apgr = source_apgr(scores, rows)
        report.add(f"complexity {name}, grouped APGR: " + ", ".join(f"{s} {a:.3f}" for s, a in apgr.items()))


def evaluate(heads: Heads, rows: Sequence[Row], vectors: Matrix) -> Evaluation:
    probs, complexity = heads.predict(vectors, [r.view for r in rows])
    task_idx = [i for i, r in enumerate(rows) if r.label is not None]
    scores = None
    if task_idx:
        scores = task_scores(
            heads.labels, [rows[i].label or "" for i in task_idx], [heads.labels[probs[i].argmax()] for i in task_idx]
        )
    curves: dict[str, CostQuality] = {}
    sw_idx = [i for i, r in enumerate(rows) if r.strong is not None and r.weak is not None]
    if sw_idx:
        by_source: dict[str, list[int]] = {"pooled": sw_idx}
        for i in sw_idx:
            by_source.setdefault(rows[i].source, []).append(i)
        for name, idx in by_source.items():
            curves[name] = cost_quality(
                [float(complexity[i]) for i in idx],
                [bool(rows[i].strong) for i in idx],
                [bool(rows[i].weak) for i in idx],
            )
    per_source: dict[str, float] = {}
    for src in sorted({r.source for r in rows}):
        per_source[src] = float(np.mean([complexity[i] for i, r in enumerate(rows) if r.source == src]))
    return Evaluation(scores, curves, per_source, complexity)


@dataclass
class Evaluation:
    tasks: TaskScores | None
    curves: dict[str, CostQuality]
    mean_complexity: dict[str, float]
    complexity: NDArray[np.float64]


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a random positive scores above a random negative); ties count half."""
    p = np.asarray(positive)[:, None]
    n = np.asarray(negative)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / max(1, p.size * n.size))
