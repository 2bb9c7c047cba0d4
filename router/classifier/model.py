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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from router.classifier.hashing import hashed
from router.classifier.labels import TASKS
from router.classifier.paths import DEFAULT_ARTIFACT
from router.classifier.text import STRUCTURE_NAMES, PromptView, structure

__all__ = ["TASKS", "Encode", "FeatureWeights", "Heads", "Matrix", "features", "softmax"]

HASH_FEATURES = 2**15
INSTRUCTION_FEATURES = 2**14
Matrix = NDArray[np.float32]
Encode = Callable[[list[str]], Matrix]  # texts -> (n, dim) unit vectors


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

    def take(self, idx: list[int]) -> Blocks:
        """The rows ``idx`` of every block."""
        return Blocks(
            self.embedding[idx], self.lexical[idx], self.structure[idx], self.instruction[idx], self.log_length[idx]
        )

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
    """Both heads, as loaded from an artifact.

    The complexity score knows the task: it is ``(1 - gain_mix) * difficulty + gain_mix * E[gain | task]``,
    the difficulty mixed with the expected frontier gain of the predicted task distribution
    (``task_gain``, per label; see ``train.TASK_GAIN``). The difficulty is itself conditioned on the task:
    ``P(math) * complexity_math + (1 - P(math)) * complexity`` (:mod:`router.classifier.difficulty`).
    Within one task the difficulty ranks (MMLU, GSM8K); across tasks the gain says where a frontier model
    is worth its price.
    """

    labels: tuple[str, ...]
    task_coef: NDArray[np.float64]  # (labels, features)
    task_intercept: NDArray[np.float64]
    temperature: float
    task_weights: FeatureWeights
    complexity: ComplexityHead
    meta: dict[str, Any]
    task_gain: tuple[float, ...] = ()
    gain_mix: float = 0.0
    complexity_math: ComplexityHead | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_split", Coefficients.split(self.task_coef))

    def task_logits(self, b: Blocks) -> NDArray[np.float64]:
        split: Coefficients = self.__dict__["_split"]
        out: NDArray[np.float64] = b.linear(self.task_weights, split) + self.task_intercept
        return out

    def predict(self, embeddings: Matrix, views: list[PromptView]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Task probabilities (n, labels) and complexity (n,) for a batch."""
        b = blocks(embeddings, views)
        probs = softmax(self.task_logits(b) / self.temperature)
        difficulty = self.complexity(b)
        if self.complexity_math is not None and "math" in self.labels:
            p_math = probs[:, self.labels.index("math")]
            difficulty = p_math * self.complexity_math(b) + (1.0 - p_math) * difficulty
        if not self.gain_mix:
            return probs, difficulty
        gain = probs @ np.asarray(self.task_gain, dtype=np.float64)
        out: NDArray[np.float64] = (1.0 - self.gain_mix) * difficulty + self.gain_mix * gain
        return probs, out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        c = self.complexity
        extra: dict[str, Any] = {}
        if self.complexity_math is not None:
            extra["complexity_math_coef"] = self.complexity_math.coef.astype(np.float16)
        meta = {
            **self.meta,
            "labels": list(self.labels),
            "temperature": self.temperature,
            "task_weights": self.task_weights.__dict__,
            "task_gain": list(self.task_gain),
            "gain_mix": self.gain_mix,
            "complexity": _scalars(c),
            "complexity_math": _scalars(self.complexity_math) if self.complexity_math else None,
            "hash_features": HASH_FEATURES,
            "instruction_features": INSTRUCTION_FEATURES,
            "structure": list(STRUCTURE_NAMES),
        }
        arrays: dict[str, Any] = {
            "task_coef": self.task_coef.astype(np.float16),
            "task_intercept": self.task_intercept,
            "complexity_coef": c.coef.astype(np.float16),
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            **extra,
        }
        np.savez_compressed(path, **arrays)

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
            quant = meta.get("complexity_math")
            return cls(
                labels=tuple(meta["labels"]),
                task_coef=data["task_coef"].astype(np.float64),
                task_intercept=data["task_intercept"].astype(np.float64),
                temperature=float(meta["temperature"]),
                task_weights=FeatureWeights(**meta["task_weights"]),
                complexity=_head(meta["complexity"], data["complexity_coef"]),
                meta=meta,
                task_gain=tuple(float(g) for g in meta.get("task_gain") or ()),
                gain_mix=float(meta.get("gain_mix") or 0.0),
                complexity_math=_head(quant, data["complexity_math_coef"]) if quant else None,
            )


def _scalars(c: ComplexityHead) -> dict[str, Any]:
    return {
        "intercept": c.intercept,
        "weights": c.weights.__dict__,
        "length_weight": c.length_weight,
        "length_mean": c.length_mean,
        "length_std": c.length_std,
        "platt_a": c.platt_a,
        "platt_b": c.platt_b,
    }


def _head(c: dict[str, Any], coef: NDArray[Any]) -> ComplexityHead:
    return ComplexityHead(
        coef=coef.astype(np.float64),
        intercept=float(c["intercept"]),
        weights=FeatureWeights(**c["weights"]),
        length_weight=float(c["length_weight"]),
        length_mean=float(c["length_mean"]),
        length_std=float(c["length_std"]),
        platt_a=float(c["platt_a"]),
        platt_b=float(c["platt_b"]),
    )
