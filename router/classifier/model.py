"""The trained heads at inference time: numpy over features, loaded from a small artifact (no pickle).

Features of one prompt: its MiniLM embedding (384, L2-normalised), hashed word uni- and bigrams of the
embedded text (sklearn's stateless ``HashingVectorizer``), and the structural signals of
:mod:`router.classifier.text`. Each head is a logistic regression over the three blocks; the task head's
probabilities are temperature-scaled (the temperature is fitted on out-of-fold predictions), so its top
probability is a calibrated confidence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from router.classifier.labels import TASKS
from router.classifier.text import PromptView, structure

__all__ = ["TASKS", "Encode", "FeatureWeights", "Heads", "Matrix", "features", "softmax"]

HASH_FEATURES = 2**15
INSTRUCTION_FEATURES = 2**14
DEFAULT_ARTIFACT = Path(__file__).parent / "artifacts" / "heads.npz"
Matrix = NDArray[np.float32]
Encode = Callable[[list[str]], Matrix]  # texts -> (n, dim) unit vectors


def hasher(n_features: int = HASH_FEATURES) -> HashingVectorizer:
    return HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2", lowercase=True)


@dataclass(frozen=True)
class FeatureWeights:
    """How the three feature blocks are scaled before the linear heads (fitted in training)."""

    embedding: float = 1.0
    lexical: float = 1.0
    structure: float = 1.0
    instruction: float = 1.0


@dataclass(frozen=True)
class Blocks:
    """The unscaled feature blocks of a batch; each head stacks them with its own weights."""

    embedding: Matrix
    lexical: sparse.csr_matrix
    structure: Matrix
    instruction: sparse.csr_matrix
    log_length: NDArray[np.float64]  # log1p of the user turn's characters

    def stack(self, w: FeatureWeights) -> sparse.csr_matrix:
        return sparse.hstack(
            [
                sparse.csr_matrix(self.embedding * w.embedding),
                self.lexical * w.lexical,
                sparse.csr_matrix(self.structure * w.structure),
                self.instruction * w.instruction,
            ],
            format="csr",
        )


def blocks(embeddings: Matrix, views: list[PromptView]) -> Blocks:
    return Blocks(
        embedding=embeddings,
        lexical=hasher().transform([v.embed_text for v in views]),
        structure=np.asarray([structure(v) for v in views], dtype=np.float32),
        instruction=hasher(INSTRUCTION_FEATURES).transform([v.instruction_text for v in views]),
        log_length=np.log1p(np.array([len(v.user) for v in views], dtype=np.float64)),
    )


def features(embeddings: Matrix, views: list[PromptView], weights: FeatureWeights) -> sparse.csr_matrix:
    return blocks(embeddings, views).stack(weights)


def softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class ComplexityHead:
    """P(escalating helps) = sigmoid(a * (linear(x) + length_weight * z(log length)) + b).

    The linear part is a logistic regression over the feature blocks; the length term adds prompt length,
    the strongest single difficulty signal within a benchmark, with a weight chosen by cross-validated
    APGR; ``a`` and ``b`` are a Platt calibration of the sum, so the score is a probability.
    """

    coef: NDArray[np.float64]
    intercept: float
    weights: FeatureWeights
    length_weight: float
    length_mean: float
    length_std: float
    platt_a: float
    platt_b: float

    def raw(self, b: Blocks) -> NDArray[np.float64]:
        linear = np.asarray(b.stack(self.weights) @ self.coef).ravel() + self.intercept
        out: NDArray[np.float64] = linear + self.length_weight * (b.log_length - self.length_mean) / self.length_std
        return out

    def __call__(self, b: Blocks) -> NDArray[np.float64]:
        out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(self.platt_a * self.raw(b) + self.platt_b)))
        return out


@dataclass(frozen=True)
class Heads:
    """Both heads, as loaded from an artifact."""

    labels: tuple[str, ...]
    task_coef: NDArray[np.float64]  # (labels, features)
    task_intercept: NDArray[np.float64]
    temperature: float
    task_weights: FeatureWeights
    complexity: ComplexityHead
    meta: dict[str, Any]

    def task_logits(self, b: Blocks) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.asarray(b.stack(self.task_weights) @ self.task_coef.T) + self.task_intercept
        return out

    def predict(self, embeddings: Matrix, views: list[PromptView]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Task probabilities (n, labels) and complexity (n,) for a batch."""
        b = blocks(embeddings, views)
        return softmax(self.task_logits(b) / self.temperature), self.complexity(b)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        c = self.complexity
        meta = {
            **self.meta,
            "labels": list(self.labels),
            "temperature": self.temperature,
            "task_weights": self.task_weights.__dict__,
            "complexity": {
                "intercept": c.intercept,
                "weights": c.weights.__dict__,
                "length_weight": c.length_weight,
                "length_mean": c.length_mean,
                "length_std": c.length_std,
                "platt_a": c.platt_a,
                "platt_b": c.platt_b,
            },
            "hash_features": HASH_FEATURES,
            "instruction_features": INSTRUCTION_FEATURES,
        }
        np.savez_compressed(
            path,
            task_coef=self.task_coef.astype(np.float16),
            task_intercept=self.task_intercept,
            complexity_coef=c.coef.astype(np.float16),
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_ARTIFACT) -> Heads:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            shape = (meta.get("hash_features"), meta.get("instruction_features"))
            if shape != (HASH_FEATURES, INSTRUCTION_FEATURES):
                raise ValueError(
                    f"{path}: built for hashed features {shape}, not {(HASH_FEATURES, INSTRUCTION_FEATURES)}"
                )
            c = meta["complexity"]
            return cls(
                labels=tuple(meta["labels"]),
                task_coef=data["task_coef"].astype(np.float64),
                task_intercept=data["task_intercept"].astype(np.float64),
                temperature=float(meta["temperature"]),
                task_weights=FeatureWeights(**meta["task_weights"]),
                complexity=ComplexityHead(
                    coef=data["complexity_coef"].astype(np.float64),
                    intercept=float(c["intercept"]),
                    weights=FeatureWeights(**c["weights"]),
                    length_weight=float(c["length_weight"]),
                    length_mean=float(c["length_mean"]),
                    length_std=float(c["length_std"]),
                    platt_a=float(c["platt_a"]),
                    platt_b=float(c["platt_b"]),
                ),
                meta=meta,
            )
