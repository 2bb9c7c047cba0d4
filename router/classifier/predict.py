"""From embeddings to answers: the trained heads combined with the policy's own task labels (pure, sync).

How the two combine: every custom task of the policy is a centroid (the normalised mean of its examples'
embeddings). For each request the cosine similarity to every centroid is computed; if the best one reaches
that task's ``min_similarity`` the request takes the custom label and the similarity is its confidence.
Otherwise the trained head's most probable label and probability stand. Complexity always comes from the
trained complexity head. Custom tasks therefore *override* the head where an author has said "requests like
these are mine", and leave everything else to the head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from router.classifier.model import Encode, Heads, Matrix
from router.classifier.text import PromptView

TOP_K = 3


@dataclass(frozen=True, slots=True)
class Classification:
    task: str
    confidence: float
    complexity: float
    top: tuple[tuple[str, float], ...]  # the head's top-k (label, probability), then custom similarities
    source: str  # "head" or "custom"


@dataclass
class ClassifierModel:
    """What a process loads once: the encoder function and the trained heads."""

    encode: Callable[[list[str]], Matrix]
    heads: Heads
    name: str = "all-MiniLM-L6-v2"

    @classmethod
    def load(cls, threads: int = 0) -> ClassifierModel:
        from router.classifier.encoder import SentenceEncoder

        encoder = SentenceEncoder(threads=threads or None)
        heads = Heads.load()
        fitted_on = str(heads.meta.get("encoder", "base"))
        if fitted_on != encoder.fingerprint:
            raise ValueError(
                f"the classifier heads were fitted on encoder {fitted_on}, but the encoder loaded is "
                f"{encoder.fingerprint}; retrain both with `router train` (docs/classification.md)"
            )
        encoder.encode(["warm-up"])  # the first forward pass allocates; do it before traffic
        return cls(encoder.encode, heads, f"all-MiniLM-L6-v2@{encoder.fingerprint}")


@dataclass(frozen=True)
class CustomTasks:
    """The policy's own task labels as unit centroids, with their similarity thresholds."""

    names: tuple[str, ...]
    centroids: NDArray[np.float32]  # (tasks, dim)
    thresholds: NDArray[np.float32]

    @classmethod
    def empty(cls, dim: int = 384) -> CustomTasks:
        return cls((), np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=np.float32))

    @classmethod
    def build(cls, examples: Mapping[str, tuple[Sequence[str], float]], encode_batch: Encode) -> CustomTasks:
        """``examples``: name -> (example texts, min_similarity)."""
        if not examples:
            return cls.empty()
        names = tuple(examples)
        rows = []
        for name in names:
            vectors = encode_batch(list(examples[name][0]))
            mean = vectors.mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-9))
        thresholds = np.array([examples[n][1] for n in names], dtype=np.float32)
        return cls(names, np.stack(rows).astype(np.float32), thresholds)


def classify(heads: Heads, embeddings: Matrix, views: list[PromptView], custom: CustomTasks) -> list[Classification]:
    probs, complexity = heads.predict(embeddings, views)
    sims = embeddings @ custom.centroids.T if custom.names else np.zeros((len(views), 0), dtype=np.float32)
    out = []
    for i in range(len(views)):
        order = np.argsort(-probs[i])[:TOP_K]
        top = [(heads.labels[j], round(float(probs[i, j]), 4)) for j in order]
        task, confidence, source = top[0][0], top[0][1], "head"
        if custom.names:
            j = int(np.argmax(sims[i]))
            top += [(name, round(float(sims[i, k]), 4)) for k, name in enumerate(custom.names)]
            if sims[i, j] >= custom.thresholds[j]:
                task, confidence, source = custom.names[j], round(float(sims[i, j]), 4), "custom"
        out.append(Classification(task, confidence, round(float(complexity[i]), 4), tuple(top), source))
    return out
