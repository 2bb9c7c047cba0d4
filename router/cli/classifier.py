"""``router train`` and ``router eval``: read JSONL rows, embed them (cached), train or score the heads.

Splits for honest numbers: ``--holdout F`` leaves out (train) or keeps only (eval) the rows whose split key
(text hash, or task-definition hash for templated rows) falls in the first F of the hash space, so the two
commands with the same F never see the same prompt. ``--exclude-source``/``--source`` do the same by dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from router.classifier.encoder import SentenceEncoder
from router.classifier.model import Heads, Matrix
from router.classifier.paths import DEFAULT_ARTIFACT, DEFAULT_CACHE
from router.classifier.rows import EmbeddingCache, Row, in_holdout, read_rows
from router.classifier.scores import threshold_for_share
from router.classifier.train import NARROW_TASKS as NARROW
from router.classifier.train import Report, auc, evaluate, train


@dataclass
class Selection:
    holdout: float = 0.0
    sources: Sequence[str] = field(default_factory=list)  # keep only these (empty: all)
    exclude_sources: Sequence[str] = field(default_factory=list)

    def pick(self, rows: list[Row], held_out: bool) -> list[Row]:
        out = [r for r in rows if r.source not in self.exclude_sources]
        if self.sources:
            out = [r for r in out if r.source in self.sources]
        if self.holdout > 0:
            out = [r for r in out if in_holdout(r.split_key, self.holdout) == held_out]
        return out


def run_train(data: Sequence[Path], out: Path, selection: Selection, cache_path: Path | None) -> str:
    rows = selection.pick(read_rows(data), held_out=False)
    cache = EmbeddingCache(cache_path)
    encoder = _Lazy()
    report = Report()
    heads = train(rows, lambda rs: cache.embed(rs, encoder.encode), report)
    heads.save(out)
    size = out.stat().st_size
    report.add(f"wrote {out} ({size / 1e6:.1f} MB) from {len(rows)} rows")
    return "\n".join(report.lines)


def run_eval(
    data: Sequence[Path], artifact: Path, selection: Selection, cache_path: Path | None, hard_sources: Sequence[str]
) -> str:
    rows = selection.pick(read_rows(data), held_out=True)
    if not rows:
        raise ValueError("no rows to evaluate after the selection")
    heads = Heads.load(artifact)
    cache = EmbeddingCache(cache_path)
    result = evaluate(heads, rows, cache.embed(rows, _Lazy().encode))
    lines = [f"{len(rows)} rows evaluated with {artifact}"]
    if result.tasks is not None:
        lines += ["", "== task", result.tasks.render()]
    for name, curve in result.curves.items():
        lines += ["", f"== complexity: cost-quality on {name}", curve.render()]
    shares = (0.05, 0.1, 0.2, 0.3, 0.5)
    lines += [
        "",
        "== complexity threshold for a target share of frontier calls on these rows (min_complexity)",
        "  "
        + "  ".join(f"{share:.0%}: {threshold_for_share(result.complexity.tolist(), share):.3f}" for share in shares),
    ]
    lines += ["", "== mean complexity by source"]
    lines += [f"  {src:<32} {value:.3f}" for src, value in result.mean_complexity.items()]
    if hard_sources:
        hard = [float(result.complexity[i]) for i, r in enumerate(rows) if r.source in hard_sources]
        narrow = [float(result.complexity[i]) for i, r in enumerate(rows) if r.label in NARROW]
        if hard and narrow:
            lines += [
                "",
                f"== open-ended: AUC of complexity, {'+'.join(hard_sources)} ({len(hard)}) above narrow-task rows "
                f"({len(narrow)}): {auc(hard, narrow):.3f} (random 0.5)",
            ]
    return "\n".join(lines)


def run_grouped(data: Sequence[Path], selection: Selection, cache_path: Path | None, grouping: str, k: int) -> str:
    """The task head's scores on groups it never saw, beside the random split (issue #16)."""
    from router.classifier.grouped import yardstick

    rows = selection.pick(read_rows(data), held_out=True)
    cache = EmbeddingCache(cache_path)
    encoder = _Lazy()
    result = yardstick(rows, lambda rs: cache.embed(rs, encoder.encode), grouping, k)
    return result.render()


class _Lazy:
    """Loads the encoder only if some text is missing from the embedding cache."""

    def __init__(self) -> None:
        self._encoder: SentenceEncoder | None = None

    def encode(self, texts: list[str]) -> Matrix:
        if self._encoder is None:
            self._encoder = SentenceEncoder()
        return self._encoder.encode(texts)


__all__ = ["DEFAULT_ARTIFACT", "DEFAULT_CACHE", "Selection", "run_eval", "run_grouped", "run_train"]
