"""The heads as shipped: the artifact loads, predicts calibrated probabilities, and round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router.classifier.labels import TASKS
from router.classifier.model import Heads, Matrix
from router.classifier.paths import DEFAULT_ARTIFACT
from router.classifier.text import prompt_view

RNG = np.random.default_rng(1)


def unit(n: int) -> Matrix:
    v = RNG.normal(size=(n, 384)).astype(np.float32)
    out: Matrix = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_shipped_artifact_predicts_probabilities() -> None:
    heads = Heads.load()
    views = [prompt_view([{"role": "user", "content": t}]) for t in ("Translate to French: hello", "x" * 3000)]
    probs, complexity = heads.predict(unit(2), views)
    assert heads.labels == TASKS
    assert probs.shape == (2, 12)
    assert np.allclose(probs.sum(axis=1), 1)
    assert ((complexity > 0) & (complexity < 1)).all()
    assert DEFAULT_ARTIFACT.stat().st_size < 5_000_000  # small enough to ship in the package


def test_save_load_round_trip(tmp_path: Path) -> None:
    heads = Heads.load()
    heads.save(tmp_path / "h.npz")
    again = Heads.load(tmp_path / "h.npz")
    views = [prompt_view([{"role": "user", "content": "Summarize: the meeting moved."}])]
    e = unit(1)
    assert np.allclose(heads.predict(e, views)[0], again.predict(e, views)[0], atol=1e-3)
    assert again.complexity.length_weight == heads.complexity.length_weight
    assert again.gain_mix == heads.gain_mix
    assert again.task_gain == heads.task_gain


def test_the_complexity_score_mixes_in_what_the_task_gains_from_a_frontier_model() -> None:
    from dataclasses import replace

    heads = Heads.load()
    views = [prompt_view([{"role": "user", "content": "Summarize: the meeting moved."}])]
    e = unit(1)
    probs, served = heads.predict(e, views)
    _, difficulty = replace(heads, gain_mix=0.0).predict(e, views)
    expected = (1 - heads.gain_mix) * difficulty + heads.gain_mix * (probs @ np.asarray(heads.task_gain))
    np.testing.assert_allclose(served, expected)
    assert heads.task_gain[TASKS.index("coding")] > heads.task_gain[TASKS.index("rewriting")]


def test_an_artifact_built_for_other_features_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import json

    heads = Heads.load()
    heads.save(tmp_path / "h.npz")
    with np.load(tmp_path / "h.npz") as data:
        arrays = dict(data)
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["structure"] = meta["structure"][:-1]  # an artifact from before a structure signal was added
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match=r"old\.npz: built for structure signals .* retrain it"):
        Heads.load(tmp_path / "old.npz")
