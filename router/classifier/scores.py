"""Scores for the two heads (pure numpy): task F1s and confusion, and the cost-quality curve (APGR)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class TaskScores:
    labels: tuple[str, ...]
    accuracy: float
    macro_f1: float
    f1: dict[str, float]
    support: dict[str, int]
    confusion: NDArray[np.int64]  # rows: true, columns: predicted

    def render(self) -> str:
        width = max(len(label) for label in self.labels)
        lines = [f"accuracy {self.accuracy:.3f}  macro-F1 {self.macro_f1:.3f}  (over {len(self.f1)} labels present)"]
        lines += [f"  {label:<{width}}  F1 {self.f1[label]:.3f}  n={self.support[label]}" for label in self.f1]
        short = [label[:5] for label in self.labels]
        lines.append("confusion (rows true, columns predicted): " + " ".join(f"{s:>5}" for s in short))
        for label, row in zip(self.labels, self.confusion, strict=True):
            if row.sum():
                lines.append(f"  {label:<{width}} " + " ".join(f"{v:>5d}" for v in row))
        return "\n".join(lines)


def task_scores(labels: Sequence[str], true: Sequence[str], pred: Sequence[str]) -> TaskScores:
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(true, pred, strict=True):
        confusion[index[t], index[p]] += 1
    f1: dict[str, float] = {}
    support: dict[str, int] = {}
    for label, i in index.items():
        n = int(confusion[i].sum())
        if n == 0:
            continue  # macro-F1 over the labels present in the evaluated set
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / n
        f1[label] = float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0
        support[label] = n
    accuracy = float(np.trace(confusion) / max(1, confusion.sum()))
    return TaskScores(tuple(labels), accuracy, float(np.mean(list(f1.values()))) if f1 else 0.0, f1, support, confusion)


@dataclass(frozen=True)
class CostQuality:
    """Share of strong (frontier) calls against accuracy, RouteLLM style."""

    fractions: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    weak_accuracy: float
    strong_accuracy: float
    apgr: float
    cpt50: float
    cpt80: float

    def render(self, points: int = 11) -> str:
        lines = [
            f"APGR {self.apgr:.3f} (random 0.5)  CPT(50%) {self.cpt50:.2f}  CPT(80%) {self.cpt80:.2f}  "
            f"weak {self.weak_accuracy:.3f} strong {self.strong_accuracy:.3f}",
            "  frontier share -> accuracy: "
            + "  ".join(
                f"{f:.1f}:{self.accuracy[round(f * (len(self.fractions) - 1))]:.3f}" for f in np.linspace(0, 1, points)
            ),
        ]
        return "\n".join(lines)


def cost_quality(scores: Sequence[float], strong: Sequence[bool], weak: Sequence[bool]) -> CostQuality:
    """Send the highest-scored fraction f to the strong model; PGR(f) and its area (APGR)."""
    s = np.asarray(scores, dtype=np.float64)
    st = np.asarray(strong, dtype=np.float64)
    wk = np.asarray(weak, dtype=np.float64)
    n = len(s)
    order = np.argsort(-s, kind="stable")
    gain = (st - wk)[order]  # accuracy change when that row goes strong
    acc = np.concatenate([[wk.sum()], wk.sum() + np.cumsum(gain)]) / n  # f = k/n, k = 0..n
    fractions = np.arange(n + 1) / n
    weak_acc, strong_acc = float(wk.mean()), float(st.mean())
    gap = strong_acc - weak_acc
    pgr = (acc - weak_acc) / gap if gap else np.zeros_like(acc)
    apgr = float(np.trapezoid(pgr, fractions))

    def cpt(target: float) -> float:
        hit = np.nonzero(pgr >= target)[0]
        return float(fractions[hit[0]]) if len(hit) else 1.0

    return CostQuality(fractions, acc, weak_acc, strong_acc, apgr, cpt(0.5), cpt(0.8))


def threshold_for_share(scores: Sequence[float], share: float) -> float:
    """The complexity threshold that sends ``share`` of this traffic to the frontier (score >= threshold)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if share <= 0:
        return float(s[0]) + 1e-9
    k = min(len(s) - 1, max(0, round(share * len(s)) - 1))
    return float(s[k])
