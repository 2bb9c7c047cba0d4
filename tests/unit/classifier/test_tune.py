"""Fine-tuning the encoder's top layers: only those learn, they round-trip through a small safetensors file,
and a file that does not fit the encoder is refused with its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router.classifier.encoder import SentenceEncoder
from router.classifier.tune import TuneSettings, fine_tune, fingerprint, load_layers, save_layers, trainable

TEXTS = ["Summarize this email for me.", "Translate into French: good morning", "Write a haiku about rain."] * 4
LABELS = ["summarization", "translation", "creative_writing"] * 4


def test_trainable_picks_the_top_layers_only() -> None:
    names = [f"0.model.encoder.layer.{i}.output.dense.weight" for i in range(6)] + ["0.model.pooler.dense.weight"]
    assert trainable(names, 2) == names[4:6]
    assert trainable(names, 0) == []


def test_tuned_layers_round_trip_and_change_only_the_top(tmp_path: Path) -> None:
    base = SentenceEncoder(layers=None)
    before = {n: p.detach().clone() for n, p in base.model.named_parameters()}
    tensors = fine_tune(base.model, TEXTS, LABELS, TuneSettings(depth=3, layers=1, epochs=1, batch=4, lr=1e-3))
    assert tensors
    assert all(n.startswith("0.model.encoder.layer.2.") for n in tensors)
    after = dict(base.model.named_parameters())
    assert all(bool((before[n] == after[n]).all()) for n in after if n not in tensors)  # layers 3-5 are cut
    assert any(not bool((before[n] == after[n]).all()) for n in tensors)

    path = tmp_path / "top.safetensors"
    save_layers(tensors, path, {"layers": 1})
    assert path.stat().st_size < 5_000_000  # one layer, float16
    loaded = SentenceEncoder(layers=path)
    assert loaded.fingerprint == fingerprint(path) != "base"
    assert SentenceEncoder(layers=None).fingerprint == "base"
    assert len(loaded.model[0].auto_model.encoder.layer) == 3  # cut to the depth it was tuned at
    tuned = base.encode(TEXTS[:3])
    np.testing.assert_allclose(loaded.encode(TEXTS[:3]), tuned, atol=2e-2)  # float16 on disk


def test_a_file_that_does_not_fit_the_encoder_is_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "bad.safetensors"
    save_layers({"0.model.encoder.layer.1.output.extra.weight": torch.zeros(2, 2)}, path, {})
    with pytest.raises(ValueError, match=r"bad.safetensors: tensors .* are not in the encoder"):
        load_layers(SentenceEncoder(layers=None).model, path)
    save_layers({"0.model.encoder.layer.5.output.dense.weight": torch.zeros(2, 2)}, path, {})
    with pytest.raises(ValueError, match=r"has shape \(2, 2\)"):
        load_layers(SentenceEncoder(layers=None).model, path)
    save_layers({"0.model.encoder.layer.1.output.dense.weight": torch.zeros(384, 1536)}, path, {"depth": 9})
    with pytest.raises(ValueError, match=r"bad.safetensors: the encoder has 6 layers; cannot keep 9"):
        load_layers(SentenceEncoder(layers=None).model, path)
    save_layers({"0.model.encoder.layer.5.output.dense.weight": torch.zeros(2, 2)}, path, {})
    with pytest.raises(ValueError, match=r"has shape \(2, 2\)"):
        load_layers(SentenceEncoder(layers=None).model, path)
