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
    assert any("grouped APGR" in line for line in report.lines)
    assert heads.complexity_math is None  # no GSM8K rows in this slice: one difficulty head
    assert heads.gain_mix > 0
    assert len(heads.task_gain) == len(heads.labels)
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


def test_word_problems_get_their_own_difficulty_head_and_the_score_knows_the_task(tmp_path: Path) -> None:
    sw = DATA / "strong-weak-train.jsonl"
    lines = sw.read_text().splitlines()
    mixed = tmp_path / "sw.jsonl"
    mixed.write_text("\n".join(lines[:300] + [line for line in lines if '"routellm-gsm8k"' in line][:200]) + "\n")
    rows = read_rows([DATA / "authored-tasks.jsonl", mixed])
    report = Report()
    heads = train(rows, vectors, report, k=3)
    assert heads.complexity_math is not None
    assert any("routellm-gsm8k" in line and "grouped APGR" in line for line in report.lines)
    heads.save(tmp_path / "h.npz")
    loaded = Heads.load(tmp_path / "h.npz")
    assert loaded.complexity_math is not None
    assert loaded.complexity_math.length_weight == heads.complexity_math.length_weight
    views = [r.view for r in rows[:5]]
    np.testing.assert_allclose(
        loaded.predict(vectors(rows[:5]), views)[1], heads.predict(vectors(rows[:5]), views)[1], atol=1e-3
    )


def test_the_temperature_is_fitted_on_the_calibration_rows_only() -> None:
    rows = list(read_rows([DATA / "authored-tasks.jsonl"]))[:300]
    sw = read_rows([DATA / "strong-weak-train.jsonl"])[:100]
    report = Report()
    calibration = frozenset(r.id for r in rows[:60])
    train([*rows, *sw], vectors, report, k=3, calibration=calibration)
    assert f"fitted on {len([r for r in rows if r.id in calibration])} rows" in report.lines[0]
    assert any("never saw" in line for line in report.lines)
