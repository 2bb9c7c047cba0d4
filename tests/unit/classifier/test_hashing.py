"""The hashed word features: the same as scikit-learn's ``HashingVectorizer``, without its per-call cost."""

from __future__ import annotations

from router.classifier.hashing import hashed


def test_hashed_features_match_scikit_learns_hashing_vectorizer() -> None:
    from sklearn.feature_extraction.text import HashingVectorizer

    texts = ["Summarize this: the meeting moved to Friday.", "Ünïcode straße, ÇA VA?", "", "a b", "x " * 300]
    reference = HashingVectorizer(n_features=2**12, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    assert abs(reference.transform(texts) - hashed(texts, 2**12)).max() < 1e-12
