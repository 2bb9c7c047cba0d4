"""Labelled rows for training and evaluating the heads: read from JSONL (de-duplicated), split by hash
(:func:`in_holdout`, so a prompt never sits on both sides), and embedded through an on-disk cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from router.classifier.model import TASKS, Encode, Matrix
from router.classifier.text import PromptView, prompt_view


@dataclass
class Row:
    id: str
    view: PromptView
    source: str
    label: str | None = None
    strong: bool | None = None
    weak: bool | None = None
    group: str = ""

    @property
    def key(self) -> str:
        return norm_key(self.view.text)

    @property
    def split_key(self) -> str:
        """What splits hash on: the task definition for rows that carry one (instances of one template
        stay on one side), else the text."""
        return norm_key(self.group) if self.group else self.key


def norm_key(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()


def embed_key(text: str) -> str:
    """The embedding cache's key: exactly the text the encoder reads."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def in_holdout(key: str, fraction: float) -> bool:
    return int(key[:8], 16) / 0xFFFFFFFF < fraction


def read_rows(paths: Iterable[Path]) -> list[Row]:
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
                    raise ValueError(f"{path}:{n}: each line needs an object with `messages`")
                row = Row(
                    id=str(obj.get("id", f"{path.name}:{n}")),
                    view=prompt_view(obj["messages"]),
                    source=str(obj.get("source", path.stem)),
                    label=obj.get("label"),
                    strong=obj.get("strong_correct"),
                    weak=obj.get("weak_correct"),
                    group=str(obj.get("task") or ""),
                )
                if row.label is not None and row.label not in TASKS:
                    raise ValueError(f"{path}:{n}: unknown label {row.label!r}")
                kind = "task" if row.label is not None else "sw"
                # Exact duplicates (lower-cased, whitespace collapsed) count once per kind of label.
                if row.label is not None and (kind, row.key) in seen:
                    continue
                seen.add((kind, row.key))
                rows.append(row)
    return rows


def fold_ids(groups: Sequence[str | None], k: int | None) -> NDArray[np.int64]:
    """A fold per row: each distinct group its own (``k`` None: leave one group out), or groups hashed
    into ``k`` folds; -1 for rows never held out."""
    names = sorted({g for g in groups if g is not None})
    if k is None:
        index = {g: i for i, g in enumerate(names)}
        return np.array([-1 if g is None else index[g] for g in groups])
    return np.array([-1 if g is None else int(hashlib.sha1(g.encode()).hexdigest()[:8], 16) % k for g in groups])


class EmbeddingCache:
    """Embeddings by text hash, kept on disk between training runs (they take minutes to compute)."""

    def __init__(self, path: Path | None, encoder: str = "base") -> None:
        self.path = path
        self.encoder = encoder  # the encoder's fingerprint: tuned layers embed differently
        self.table: dict[str, NDArray[np.float32]] = {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as data:
                self.table = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def embed(self, rows: Sequence[Row], encode: Encode) -> Matrix:
        prefix = "" if self.encoder == "base" else f"{self.encoder}\0"
        keys = [embed_key(prefix + r.view.embed_text) for r in rows]
        missing = {k: r.view.embed_text for k, r in zip(keys, rows, strict=True) if k not in self.table}
        if missing:
            new = list(missing)
            vectors = encode([missing[k] for k in new])
            self.table.update(zip(new, vectors, strict=True))
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(self.path, keys=np.array(list(self.table)), vectors=np.stack(list(self.table.values())))
        return np.stack([self.table[k] for k in keys]).astype(np.float32)
