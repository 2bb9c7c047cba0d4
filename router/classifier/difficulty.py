"""Training the difficulty heads (the complexity score's first half), for ``router train``.

One head per task family: *quantitative* (math word problems: GSM8K's strong/weak rows) and *general*
(everything else: MMLU's rows, plus the open-ended prior rows). At inference the two are weighted by the
task head's probability of ``math`` (:meth:`router.classifier.model.Heads.predict`), so the score is
conditioned on the task: the word-problem signals (distinct numbers, money, percentages) rank GSM8K
questions and would only add noise to knowledge questions.

Validation is grouped: MMLU rows are held out by subject (a head never scores a subject it trained on),
GSM8K rows by text. Each family picks its prompt-length weight by that grouped APGR and is
Platt-calibrated on its own out-of-fold scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from router.classifier.model import Blocks, ComplexityHead, FeatureWeights
from router.classifier.rows import Row, fold_ids
from router.classifier.scores import cost_quality

COMPLEXITY_WEIGHTS = FeatureWeights(embedding=1.0, lexical=0.5, structure=5.0, instruction=0.5)
COMPLEXITY_C = 1.0
LENGTH_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
QUANTITATIVE_SOURCES = ("routellm-gsm8k",)
# Open-ended prior rows (no correctness labels exist for open-ended prompts): arena-hard prompts were
# selected because frontier models separate from weaker ones on them -> 1; prompts of the narrow tasks,
# where a fine-tuned small model is the product's premise -> 0. Weighted below the measured rows.
HARD_SOURCES = ("arena-hard-v2.0",)
PRIOR_WEIGHT = 3.0


def difficulty_group(row: Row) -> str:
    """What grouped validation holds out together: an MMLU subject (ids ``mmlu-<subject>-NNNN``), else the text."""
    if row.id.startswith("mmlu-"):
        return "mmlu:" + row.id.split("-")[1]
    return row.split_key


def source_apgr(scores: NDArray[np.float64], rows: Sequence[Row]) -> dict[str, float]:
    """APGR per source: a scorer must rank within each benchmark, not just tell them apart."""
    out = {}
    for src in sorted({r.source for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.source == src]
        strong = [bool(rows[i].strong) for i in idx]
        out[src] = cost_quality(scores[idx].tolist(), strong, [bool(rows[i].weak) for i in idx]).apgr
    return out


@dataclass(frozen=True)
class Fitted:
    head: ComplexityHead
    oof: NDArray[np.float64]  # calibrated out-of-fold probabilities of the family's measured rows
    by_length: dict[float, float]  # grouped mean per-source APGR by length weight


def fit_family(rows: Sequence[Row], b: Blocks, prior: Sequence[Row], bp: Blocks | None, k: int) -> Fitted:
    # Target: escalating helps (strong right, weak wrong). "Weak wrong" alone ranks rows neither model
    # gets right as high as those the frontier fixes, and scores lower APGR (docs/classification.md).
    target = np.array([bool(r.strong) and not r.weak for r in rows])
    if len(set(target.tolist())) < 2:
        raise ValueError(f"{len(rows)} strong/weak rows where escalating always or never helps: nothing to learn")
    xs = b.stack(COMPLEXITY_WEIGHTS)
    x_all, t_all, w_all = xs, target, np.ones(len(rows))
    groups = [difficulty_group(r) for r in rows]
    if prior and bp is not None:
        x_all = sparse.vstack([xs, bp.stack(COMPLEXITY_WEIGHTS)], format="csr")
        t_all = np.concatenate([target, [r.source in HARD_SOURCES for r in prior]])
        w_all = np.concatenate([w_all, np.full(len(prior), PRIOR_WEIGHT)])
        groups += [r.split_key for r in prior]
    fold = fold_ids(groups, k)
    n = len(rows)
    raw = np.zeros(n)
    for f in range(k):
        test = fold == f
        if not test[:n].any() or len(set(t_all[~test].tolist())) < 2:  # nothing to score, or nothing to learn
            continue
        clf = LogisticRegression(C=COMPLEXITY_C, max_iter=3000)
        clf.fit(x_all[~test], t_all[~test], sample_weight=w_all[~test])
        raw[test[:n]] = clf.decision_function(xs[test[:n]])
    mean, std = float(b.log_length.mean()), float(b.log_length.std() or 1.0)
    z = (b.log_length - mean) / std
    scored = {w: float(np.mean(list(source_apgr(raw + w * z, rows).values()))) for w in LENGTH_WEIGHTS}
    best = max(scored, key=lambda w: scored[w])
    platt = LogisticRegression(C=1e6, max_iter=1000).fit((raw + best * z).reshape(-1, 1), target)
    final = LogisticRegression(C=COMPLEXITY_C, max_iter=3000).fit(x_all, t_all, sample_weight=w_all)
    head = ComplexityHead(
        coef=final.coef_[0],
        intercept=float(final.intercept_[0]),
        weights=COMPLEXITY_WEIGHTS,
        length_weight=best,
        length_mean=mean,
        length_std=std,
        platt_a=float(platt.coef_[0][0]),
        platt_b=float(platt.intercept_[0]),
    )
    oof = 1.0 / (1.0 + np.exp(-(head.platt_a * (raw + best * z) + head.platt_b)))
    return Fitted(head, oof, scored)
