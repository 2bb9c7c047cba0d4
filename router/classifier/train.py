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
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from router.classifier.model import (
    TASKS,
    Blocks,
    ComplexityHead,
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
COMPLEXITY_WEIGHTS = FeatureWeights(embedding=1.0, lexical=0.5, structure=5.0, instruction=0.5)
COMPLEXITY_C = 1.0
LENGTH_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
# Open-ended prior rows for the complexity head (no correctness labels exist for open-ended prompts):
# arena-hard prompts were selected because frontier models separate from weaker ones on them -> 1; prompts
# of the narrow tasks, where a fine-tuned small model is the product's premise -> 0. Weighted below the
# measured strong/weak rows.
HARD_SOURCES = ("arena-hard-v2.0",)
NARROW_TASKS = ("summarization", "extraction", "classification", "closed_qa", "translation", "rewriting")
PRIOR_WEIGHT = 3.0


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


def _task_head(xt: Any, y: list[str], fold: NDArray[np.int64], k: int, report: Report) -> tuple[Any, Any, float]:
    oof = np.zeros((len(y), len(TASKS)))
    for f in range(k):
        test = fold == f
        clf = fit_task(xt[~test], [y[i] for i in np.nonzero(~test)[0]])
        oof[test] = full_logits(clf, xt[test])
    temperature = fit_temperature(oof, y)
    cv = task_scores(TASKS, y, [TASKS[i] for i in oof.argmax(axis=1)])
    report.add(
        f"task head: {len(y)} rows, {k}-fold CV split by text hash (by task definition where given), "
        f"temperature {temperature:.2f}",
        cv.render(),
    )
    final = fit_task(xt, y)
    coef = np.zeros((len(TASKS), xt.shape[1]))
    intercept = np.full(len(TASKS), -1e9)
    for j, label in enumerate(final.classes_):
        coef[TASKS.index(label)] = final.coef_[j]
        intercept[TASKS.index(label)] = final.intercept_[j]
    return coef, intercept, temperature


def _source_apgr(scores: NDArray[np.float64], rows: Sequence[Row]) -> float:
    """Mean APGR over sources: a scorer must rank within each benchmark, not just tell them apart."""
    values = []
    for src in sorted({r.source for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.source == src]
        values.append(
            cost_quality(
                scores[idx].tolist(), [bool(rows[i].strong) for i in idx], [bool(rows[i].weak) for i in idx]
            ).apgr
        )
    return float(np.mean(values))


def _complexity_head(
    sw_rows: Sequence[Row], b: Blocks, prior: Sequence[Row], bp: Blocks, k: int, report: Report
) -> ComplexityHead:
    # Target: escalating helps (strong right, weak wrong). "Weak wrong" alone ranks rows neither model
    # gets right as high as those the frontier fixes, and scores lower APGR (docs/classification.md).
    target = np.array([bool(r.strong) and not r.weak for r in sw_rows])
    xs = b.stack(COMPLEXITY_WEIGHTS)
    xp = bp.stack(COMPLEXITY_WEIGHTS)
    tp = np.array([r.source in HARD_SOURCES for r in prior])
    x_all = sparse.vstack([xs, xp], format="csr")
    t_all = np.concatenate([target, tp])
    w_all = np.concatenate([np.ones(len(sw_rows)), np.full(len(prior), PRIOR_WEIGHT)])
    fold = np.concatenate([folds(sw_rows, k), folds(prior, k)])
    n = len(sw_rows)
    oof = np.zeros(n)
    for f in range(k):
        test = fold == f
        clf = LogisticRegression(C=COMPLEXITY_C, max_iter=3000)
        clf.fit(x_all[~test], t_all[~test], sample_weight=w_all[~test])
        oof[test[:n]] = clf.decision_function(xs[test[:n]])
    mean, std = float(b.log_length.mean()), float(b.log_length.std() or 1.0)
    z = (b.log_length - mean) / std
    scored = {w: _source_apgr(oof + w * z, sw_rows) for w in LENGTH_WEIGHTS}
    best = max(scored, key=lambda w: scored[w])
    report.add(
        "complexity head: cross-validated mean per-source APGR by length weight: "
        + ", ".join(f"{w}: {a:.3f}" for w, a in scored.items())
        + f" -> {best}"
    )
    platt = LogisticRegression(C=1e6, max_iter=1000).fit((oof + best * z).reshape(-1, 1), target)
    final = LogisticRegression(C=COMPLEXITY_C, max_iter=3000).fit(x_all, t_all, sample_weight=w_all)
    return ComplexityHead(
        coef=final.coef_[0],
        intercept=float(final.intercept_[0]),
        weights=COMPLEXITY_WEIGHTS,
        length_weight=best,
        length_mean=mean,
        length_std=std,
        platt_a=float(platt.coef_[0][0]),
        platt_b=float(platt.intercept_[0]),
    )


def train(rows: Sequence[Row], vectors: Vectors, report: Report, k: int = 5) -> Heads:
    task_rows = [r for r in rows if r.label is not None]
    sw_rows = [r for r in rows if r.strong is not None and r.weak is not None]
    if not task_rows or not sw_rows:
        raise ValueError("training needs rows with `label` and rows with `strong_correct`/`weak_correct`")
    bt = blocks(vectors(task_rows), [r.view for r in task_rows])
    y = [r.label or "" for r in task_rows]
    coef, intercept, temperature = _task_head(bt.stack(TASK_WEIGHTS), y, folds(task_rows, k), k, report)
    prior = [r for r in task_rows if r.source in HARD_SOURCES or r.label in NARROW_TASKS]
    complexity = _complexity_head(
        sw_rows,
        blocks(vectors(sw_rows), [r.view for r in sw_rows]),
        prior,
        blocks(vectors(prior), [r.view for r in prior]),
        k,
        report,
    )
    return Heads(
        labels=TASKS,
        task_coef=coef,
        task_intercept=intercept,
        temperature=temperature,
        task_weights=TASK_WEIGHTS,
        complexity=complexity,
        meta={"task_rows": len(task_rows), "complexity_rows": len(sw_rows), "complexity_prior_rows": len(prior)},
    )


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
