from __future__ import annotations

import numpy as np
import pytest

from router.classifier.scores import cost_quality, task_scores, threshold_for_share


def test_task_scores_macro_f1_and_confusion() -> None:
    labels = ("a", "b", "c")
    s = task_scores(labels, ["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert s.accuracy == 0.75
    assert s.f1 == pytest.approx({"a": 2 / 3, "b": 0.8})  # c absent from the truth: not in the macro average
    assert s.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert s.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert "confusion" in s.render()


def test_apgr_of_an_oracle_random_and_inverted_router() -> None:
    rng = np.random.default_rng(0)
    strong = rng.random(2000) < 0.8
    weak = rng.random(2000) < 0.6
    gain = strong.astype(float) - weak
    oracle = cost_quality(gain.tolist(), strong.tolist(), weak.tolist())
    inverted = cost_quality((-gain).tolist(), strong.tolist(), weak.tolist())
    noise = cost_quality(rng.random(2000).tolist(), strong.tolist(), weak.tolist())
    assert oracle.apgr > 0.9 > noise.apgr
    assert abs(noise.apgr - 0.5) < 0.1
    assert inverted.apgr < 0.2
    assert oracle.accuracy[0] == pytest.approx(weak.mean())
    assert oracle.accuracy[-1] == pytest.approx(strong.mean())
    assert oracle.cpt50 < noise.cpt50


def test_threshold_for_share_sends_that_share() -> None:
    scores = np.linspace(0, 1, 1001)
    for share in (0.05, 0.2, 0.5):
        t = threshold_for_share(scores.tolist(), share)
        assert (scores >= t).mean() == pytest.approx(share, abs=0.002)
    assert (scores >= threshold_for_share(scores.tolist(), 0)).sum() == 0
