"""Hashed word uni- and bigram features (the lexical and instruction blocks of :mod:`router.classifier.model`)."""

from __future__ import annotations

import itertools
import re

import numpy as np
from scipy import sparse
from sklearn.utils import murmurhash3_32

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
