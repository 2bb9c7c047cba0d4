"""Training on a slice of the shipped data (with stand-in vectors, so the test is about the pipeline)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.classifier.model import Heads, softmax
from router.classifier.rows import Row, read_rows
from router.classifier.train import Report, auc, evaluate, fit_temperature, train

DATA = Path(__file__).parents[3] / "router" / "classifier" / "data"


def vectors(rows: Sequence[Row]) -> np.ndarray:
    """Deterministic per text, unit length."""
    out = []
    for r in rows:
        seed = int(hashlib.sha1(r.view.embed_text.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).normal(size=384)
        out.append(v / np.linalg.norm(v))
    return np.asarray(out, dtype=np.float32)


def slice_of(path: Path, n: int, tmp: Path) -> Path:
    out = tmp / path.name
    with path.open() as f:
        out.write_text("".join(itertools.islice(f, n)))
    return out


def test_train_then_evaluate(tmp_path: Path) -> None:
    rows = read_rows([DATA / "authored-tasks.jsonl", slice_of(DATA / "strong-weak-train.jsonl", 400, tmp_path)])
    report = Report()
    heads = train(rows, vectors, report, k=3)
    assert "task head" in report.lines[0]
    assert any("complexity head" in line for line in report.lines)
    heads.save(tmp_path / "h.npz")
    loaded = Heads.load(tmp_path / "h.npz")
    result = evaluate(loaded, rows, vectors(rows))
    assert result.tasks is not None
    assert result.tasks.accuracy > 0.8
    assert set(result.curves) == {"pooled", "routellm-mmlu"}


def test_temperature_and_auc() -> None:
    logits = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    t = fit_temperature(np.pad(logits, ((0, 0), (0, 10)), constant_values=-1e9), ["summarization", "extraction"] * 2)
    assert t < 1  # perfectly separated: sharpen
    assert np.allclose(softmax(logits).sum(axis=1), 1)
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.5], [0.5]) == 0.5
