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
from router.classifier.paths import DEFAULT_ARTIFACT, DEFAULT_CACHE, DEFAULT_LAYERS
from router.classifier.predict import ClassifierModel
from router.classifier.rows import EmbeddingCache, Row, in_holdout, read_rows
from router.classifier.scores import cost_quality, threshold_for_share
from router.classifier.train import NARROW_TASKS as NARROW
from router.classifier.train import Report, auc, evaluate, train
from router.classifier.tune import TuneSettings, fine_tune, fingerprint, save_layers
from router.offline.policy_table import PolicyTable

CALIBRATION_SHARE = 0.15


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


def run_train(
    data: Sequence[Path], out: Path, selection: Selection, cache_path: Path | None, tune: TuneSettings | None = None
) -> str:
    """Fit the heads (and first, with ``tune``, the encoder's top layers, written beside ``out``)."""
    rows = selection.pick(read_rows(data), held_out=False)
    report = Report()
    encoder = _Lazy()
    calibration = None
    if tune is not None:
        layers_out = out.parent / DEFAULT_LAYERS.name
        # A share of the task rows (whole task definitions and templates) is kept from the fine-tuning: the
        # confidence's temperature is fitted on them, where the tuned embeddings are as good as on new traffic.
        task_rows = [r for r in rows if r.label is not None]
        calibration = frozenset(r.id for r in task_rows if in_holdout(r.split_key, CALIBRATION_SHARE))
        tuning = [r for r in task_rows if r.id not in calibration]
        tuned = SentenceEncoder(layers=None)
        tensors = fine_tune(tuned.model, [r.view.embed_text for r in tuning], [r.label or "" for r in tuning], tune)
        meta = {"depth": tune.depth, "layers": tune.layers, "epochs": tune.epochs, "rows": len(tuning)}
        save_layers(tensors, layers_out, meta)
        tuned.fingerprint = fingerprint(layers_out)
        encoder = _Lazy(tuned)
        report.add(
            f"encoder: cut to {tune.depth} layers, tuned its top {tune.layers} on {len(tuning)} rows "
            f"({len(calibration)} kept for calibration) -> {layers_out}"
        )
    cache = EmbeddingCache(cache_path, encoder.fingerprint)
    heads = train(
        rows, lambda rs: cache.embed(rs, encoder.encode), report, encoder=encoder.fingerprint, calibration=calibration
    )
    heads.save(out)
    size = out.stat().st_size
    report.add(f"wrote {out} ({size / 1e6:.1f} MB) from {len(rows)} rows")
    return "\n".join(report.lines)


def run_eval(
    data: Sequence[Path],
    artifact: Path,
    selection: Selection,
    cache_path: Path | None,
    hard_sources: Sequence[str],
    policy: PolicyTable | None = None,
) -> str:
    """The heads' scores on ``data``; with ``policy``, also the table of a complexity rule's threshold
    against the share of all these requests the whole policy sends to frontier APIs."""
    rows = selection.pick(read_rows(data), held_out=True)
    if not rows:
        raise ValueError("no rows to evaluate after the selection")
    heads = Heads.load(artifact)
    encoder = _Lazy()
    cache = EmbeddingCache(cache_path, encoder.fingerprint)
    vectors = cache.embed(rows, encoder.encode)
    result = evaluate(heads, rows, vectors)
    lines = [f"{len(rows)} rows evaluated with {artifact}"]
    if result.tasks is not None:
        lines += ["", "== task", result.tasks.render()]
    for name, curve in result.curves.items():
        lines += ["", f"== complexity: cost-quality on {name}", curve.render()]
    if policy is not None:
        model = ClassifierModel(encoder.encode, heads)
        lines += [
            "",
            policy.render(data, rows, model, {r.view.embed_text: v for r, v in zip(rows, vectors, strict=True)}),
        ]
    shares = (0.05, 0.1, 0.2, 0.3, 0.5)
    lines += [
        "",
        "== the complexity score alone: its threshold for a share of these rows, as if one rule saw every request",
        "  "
        + "  ".join(f"{share:.0%}: {threshold_for_share(result.complexity.tolist(), share):.3f}" for share in shares),
    ]
    lines += ["", "== mean complexity by source"]
    lines += [f"  {src:<32} {value:.3f}" for src, value in result.mean_complexity.items()]
    if hard_sources:
        hard = [float(result.complexity[i]) for i, r in enumerate(rows) if r.source in hard_sources]
        narrow = [float(result.complexity[i]) for i, r in enumerate(rows) if r.label in NARROW]
        everyday = [float(result.complexity[i]) for i, r in enumerate(rows) if r.source not in hard_sources]
        if hard and narrow:
            lines += [
                "",
                f"== open-ended: AUC of complexity, {'+'.join(hard_sources)} ({len(hard)}) above narrow-task rows "
                f"({len(narrow)}): {auc(hard, narrow):.3f} (random 0.5)",
            ]
        if hard and everyday:
            # No correctness labels exist for open-ended prompts: take the hard set's prompts as those where
            # the frontier model helps and the rest as those where the small one does as well.
            is_hard = [r.source in hard_sources for r in rows]
            curve = cost_quality(result.complexity.tolist(), [True] * len(rows), [not h for h in is_hard])
            lines += [
                f"== open-ended: {'+'.join(hard_sources)} ({len(hard)}) against the other rows ({len(everyday)}): "
                f"AUC {auc(hard, everyday):.3f}, APGR {curve.apgr:.3f} (hard rows taken as the frontier's gain)",
            ]
    return "\n".join(lines)


def run_grouped(
    data: Sequence[Path],
    selection: Selection,
    cache_path: Path | None,
    grouping: str,
    k: int,
    tune: TuneSettings | None = None,
) -> str:
    """The task head's scores on groups it never saw, beside the random split (issue #16).

    On the encoder as shipped in its package: the tuned layers have seen every row, so judging a head on
    them would flatter it. ``tune`` fine-tunes an encoder anew for each grouped fold instead."""
    from router.classifier.grouped import yardstick

    rows = selection.pick(read_rows(data), held_out=True)
    encoder = _Lazy(base=True)
    cache = EmbeddingCache(cache_path, encoder.fingerprint)
    result = yardstick(rows, lambda rs: cache.embed(rs, encoder.encode), grouping, k, tune)
    return result.render()


class _Lazy:
    """Loads the encoder (with the shipped tuned layers) only if some text is missing from the cache."""

    def __init__(self, encoder: SentenceEncoder | None = None, base: bool = False) -> None:
        self._encoder = encoder
        self._layers = None if base else DEFAULT_LAYERS
        self.fingerprint = encoder.fingerprint if encoder else fingerprint(self._layers)

    def encode(self, texts: list[str]) -> Matrix:
        if self._encoder is None:
            self._encoder = SentenceEncoder(layers=self._layers)
        return self._encoder.encode(texts)


__all__ = ["DEFAULT_ARTIFACT", "DEFAULT_CACHE", "Selection", "TuneSettings", "run_eval", "run_grouped", "run_train"]
