"""The trained heads at inference time: numpy over features, loaded from a small artifact (no pickle).

Features of one prompt: its MiniLM embedding (384, L2-normalised), hashed word uni- and bigrams of the
embedded text (sklearn's stateless ``HashingVectorizer``), and the structural signals of
:mod:`router.classifier.text`. Each head is a logistic regression over the three blocks; the task head's
probabilities are temperature-scaled (the temperature is fitted on out-of-fold predictions), so its top
probability is a calibrated confidence.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.utils import murmurhash3_32

from router.classifier.labels import TASKS
from router.classifier.paths import DEFAULT_ARTIFACT
from router.classifier.text import STRUCTURE_NAMES, PromptView, structure

__all__ = ["TASKS", "Encode", "FeatureWeights", "Heads", "Matrix", "features", "softmax"]

HASH_FEATURES = 2**15
INSTRUCTION_FEATURES = 2**14
Matrix = NDArray[np.float32]
Encode = Callable[[list[str]], Matrix]  # texts -> (n, dim) unit vectors


_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def hashed(texts: list[str], n_features: int) -> sparse.csr_matrix:
    """Word uni- and bigram counts hashed into ``n_features`` columns, rows L2-normalised.

    The same features as scikit-learn's ``HashingVectorizer(ngram_range=(1, 2), alternate_sign=False)``
    (its tokenizer and MurmurHash3), without its per-call parameter validation, which cost more than
    the hashing itself on one short prompt.
    """
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for text in texts:
        tokens = _TOKEN.findall(text.lower())
        counts: dict[int, int] = {}
        for gram in (*tokens, *(f"{a} {b}" for a, b in itertools.pairwise(tokens))):
            col = abs(murmurhash3_32(gram, seed=0)) % n_features
            counts[col] = counts.get(col, 0) + 1
        norm = float(np.sqrt(sum(c * c for c in counts.values()))) or 1.0
        indices.extend(counts)
        data.extend(c / norm for c in counts.values())
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int32)),
        shape=(len(texts), n_features),
    )


@dataclass(frozen=True)
class FeatureWeights:
    """How the three feature blocks are scaled before the linear heads (fitted in training)."""

    embedding: float = 1.0
    lexical: float = 1.0
    structure: float = 1.0
    instruction: float = 1.0


@dataclass(frozen=True)
class Coefficients:
    """A head's weights split by feature block, each (block features, outputs), C-contiguous."""

    embedding: NDArray[np.float64]
    lexical: NDArray[np.float64]
    structure: NDArray[np.float64]
    instruction: NDArray[np.float64]

    @classmethod
    def split(cls, coef: NDArray[np.float64], dim: int = 384) -> Coefficients:
        """From a (outputs, features) or (features,) coefficient array laid out as :meth:`Blocks.stack`."""
        c = coef.reshape(-1, coef.shape[-1]).T  # (features, outputs)
        edges = np.cumsum([0, dim, HASH_FEATURES, len(STRUCTURE_NAMES), INSTRUCTION_FEATURES])
        parts = [np.ascontiguousarray(c[a:b]) for a, b in itertools.pairwise(edges)]
        return cls(*parts)


@dataclass(frozen=True)
class Blocks:
    """The unscaled feature blocks of a batch; each head stacks them with its own weights."""

    embedding: Matrix
    lexical: sparse.csr_matrix
    structure: Matrix
    instruction: sparse.csr_matrix
    log_length: NDArray[np.float64]  # log1p of the user turn's characters

    def linear(self, w: FeatureWeights, coef: Coefficients) -> NDArray[np.float64]:
        """``stack(w) @ coef`` block by block: no sparse copy of the dense embedding, no transposed copy."""
        out: NDArray[np.float64] = (
            (self.embedding @ coef.embedding) * w.embedding
            + np.asarray(self.lexical @ coef.lexical) * w.lexical
            + (self.structure @ coef.structure) * w.structure
            + np.asarray(self.instruction @ coef.instruction) * w.instruction
        )
        return out

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
        lexical=hashed([v.text for v in views], HASH_FEATURES),
        structure=np.asarray([structure(v) for v in views], dtype=np.float32),
        instruction=hashed([v.instruction_text for v in views], INSTRUCTION_FEATURES),
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_split", Coefficients.split(self.coef))

    def raw(self, b: Blocks) -> NDArray[np.float64]:
        split: Coefficients = self.__dict__["_split"]
        linear = b.linear(self.weights, split).ravel() + self.intercept
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_split", Coefficients.split(self.task_coef))

    def task_logits(self, b: Blocks) -> NDArray[np.float64]:
        split: Coefficients = self.__dict__["_split"]
        out: NDArray[np.float64] = b.linear(self.task_weights, split) + self.task_intercept
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
            "structure": list(STRUCTURE_NAMES),
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
            built_for = tuple(meta.get("structure") or ())
            if built_for != STRUCTURE_NAMES:
                raise ValueError(
                    f"{path}: built for structure signals {list(built_for)}, not {list(STRUCTURE_NAMES)}; "
                    "retrain it with `router train`"
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
