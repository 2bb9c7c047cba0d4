"""Labelled rows: read with file and line for a bad one, split by hash (by task definition when rows carry
one), embedded once per distinct text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router.classifier.rows import EmbeddingCache, Row, in_holdout, read_rows
from router.classifier.text import prompt_view
from tests.unit.classifier.test_train import vectors


def test_read_rows_rejects_unknown_labels_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}], "label": "poetry"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: unknown label 'poetry'"):
        read_rows([bad])


def test_holdout_split_is_by_task_definition_when_given(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(
        "\n".join(
            f'{{"messages": [{{"role": "user", "content": "instance {i}"}}], "label": "extraction", "task": "task-7"}}'
            for i in range(20)
        )
    )
    rows = read_rows([f])
    assert len({in_holdout(r.split_key, 0.5) for r in rows}) == 1  # all on one side


def test_embedding_cache_returns_one_vector_per_row_when_texts_repeat(tmp_path: Path) -> None:
    texts = ["alpha", "beta", "alpha", "gamma", "beta"]  # a cold cache, with repeats (the bug: one per text)
    rows = [Row(str(i), prompt_view([{"role": "user", "content": t}]), "s") for i, t in enumerate(texts)]
    calls: list[int] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return vectors([Row("x", prompt_view([{"role": "user", "content": t}]), "s") for t in batch])

    cache = EmbeddingCache(tmp_path / "e.npz")
    cold = cache.embed(rows, encode)
    assert cold.shape == (5, 384)
    assert calls == [3]  # each distinct text embedded once
    assert np.array_equal(cold[0], cold[2])
    warm = EmbeddingCache(tmp_path / "e.npz").embed(rows, encode)  # read back from disk, no new calls
    assert calls == [3]
    assert np.array_equal(cold, warm)


def test_embedding_cache_keys_embeddings_by_encoder(tmp_path: Path) -> None:
    rows = [Row("1", prompt_view([{"role": "user", "content": "alpha"}]), "s")]
    calls: list[str] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.extend(batch)
        return vectors([Row("x", prompt_view([{"role": "user", "content": t}]), "s") for t in batch])

    EmbeddingCache(tmp_path / "e.npz").embed(rows, encode)
    EmbeddingCache(tmp_path / "e.npz", encoder="abc123").embed(rows, encode)  # tuned layers: not the same vector
    EmbeddingCache(tmp_path / "e.npz", encoder="abc123").embed(rows, encode)
    assert calls == ["alpha", "alpha"]
