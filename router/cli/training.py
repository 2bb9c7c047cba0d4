"""``router train`` and ``router eval``: the classifier's heads from labelled JSONL, and their scores. The
work is in :mod:`router.cli.classifier`, imported only when one of these runs (it loads the encoder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.cli.common import print_issues
from router.errors import PolicyError

if TYPE_CHECKING:
    from router.offline.policy_table import PolicyTable

DEFAULT_POLICIES = Path("policies")


def cmd_train(args: argparse.Namespace) -> int:
    from router.cli.classifier import Selection, run_train

    selection = Selection(holdout=args.holdout, exclude_sources=args.exclude_source)
    tune = _tune(args)
    try:
        print(run_train(args.data, args.out, selection, None if args.no_cache else args.cache, tune))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _policy_table(args: argparse.Namespace) -> PolicyTable | None:
    from router.offline.policy_table import PolicyTable
    from router.policy.compile import load_policy

    path = args.policies
    if path is None and not args.no_policy and DEFAULT_POLICIES.is_dir():
        path = DEFAULT_POLICIES  # the bundled policy, when run from a checkout
    if path is None or args.no_policy:
        return None
    return PolicyTable(load_policy(path), str(path), args.rule, args.model)


def cmd_eval(args: argparse.Namespace) -> int:
    from router.cli.classifier import Selection, run_eval, run_grouped

    selection = Selection(holdout=args.holdout, sources=args.source)
    cache = None if args.no_cache else args.cache
    try:
        if args.group_by:
            tune = _tune(args)
            print(run_grouped(args.data, selection, cache, args.group_by, args.folds, tune))
            return 0
        print(run_eval(args.data, args.artifact, selection, cache, args.hard_source, _policy_table(args)))
    except PolicyError as exc:
        print_issues(exc)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_compose(args: argparse.Namespace) -> int:
    from router.classifier.compose import write

    try:
        print(f"wrote {write(args.out, args.seed)} rows to {args.out}")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    from router.classifier.paths import DEFAULT_CACHE

    p.add_argument("--data", type=Path, nargs="+", required=True, help="JSONL files (see router/classifier/data)")
    p.add_argument("--holdout", type=float, default=0.0, help="hash share held out of training / kept for eval")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache (default .cache/embeddings.npz)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")


def _tune_args(p: argparse.ArgumentParser, layers_help: str) -> None:
    p.add_argument("--tune-layers", type=int, default=0, help=layers_help)
    p.add_argument("--tune-epochs", type=int, default=2, help="epochs of that fine-tuning (default 2)")
    p.add_argument("--tune-depth", type=int, default=4, help="transformer layers the tuned encoder keeps (default 4)")


def _tune(args: argparse.Namespace) -> Any:
    from router.classifier.tune import TuneSettings

    if args.tune_layers <= 0:
        return None
    return TuneSettings(depth=args.tune_depth, layers=args.tune_layers, epochs=args.tune_epochs)


def add_training_commands(sub: Any) -> None:
    from router.classifier.paths import DEFAULT_ARTIFACT

    tr = sub.add_parser("train", help="train the task and complexity heads from labelled JSONL")
    _data_args(tr)
    tr.add_argument("--out", type=Path, required=True, help="artifact to write (.npz)")
    tr.add_argument("--exclude-source", action="append", default=[], help="leave a dataset out (repeatable)")
    _tune_args(tr, "first fine-tune the encoder's top N layers on the task labels (written beside --out; minutes)")
    tr.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="score the heads: task F1s and confusion, cost-quality curve and APGR")
    _data_args(ev)
    ev.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT, help="heads to evaluate (default: shipped)")
    ev.add_argument("--source", action="append", default=[], help="evaluate only this dataset (repeatable)")
    ev.add_argument(
        "--hard-source", action="append", default=[], help="unlabelled dataset that should score as hard (AUC)"
    )
    ev.add_argument(
        "--group-by",
        choices=["source", "task"],
        help="judge the task head on groups it never saw instead (trains one head per fold; no artifact): "
        "leave one source out, or task definitions in --folds folds; printed beside the random split",
    )
    ev.add_argument("--folds", type=int, default=5, help="folds for --group-by task (default 5)")
    ev.add_argument(
        "--policies",
        type=Path,
        help="route the rows with this whole policy (default: ./policies when there is one): the complexity "
        "rule's threshold against the share of ALL requests that reach a frontier API (other rules send theirs "
        "first)",
    )
    ev.add_argument("--no-policy", action="store_true", help="only the classifier's own scores, no policy table")
    ev.add_argument("--rule", help="with --policies: the complexity rule (default: the only one with min_complexity)")
    ev.add_argument("--model", default="auto", help="with --policies: the alias the rows are sent to (default auto)")
    _tune_args(ev, "with --group-by: fine-tune the encoder's top N layers anew for every fold (minutes per fold)")
    ev.set_defaults(func=cmd_eval)
    data = sub.add_parser("data", help="training data tools")
    dsub = data.add_subparsers(dest="data_command", required=True)
    comp = dsub.add_parser(
        "compose", help="expand the hand-written pieces in router/classifier/data/authoring into labelled rows"
    )
    comp.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_ARTIFACT.parent.parent / "data" / "authored-composed.jsonl",
        help="JSONL to write (default: the committed router/classifier/data/authored-composed.jsonl)",
    )
    comp.add_argument("--seed", type=int, default=2026, help="the composer's RNG seed (default 2026)")
    comp.set_defaults(func=cmd_compose)
