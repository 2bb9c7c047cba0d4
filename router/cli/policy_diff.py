"""``router policy diff OLD NEW --traffic FILE``: replay traffic through two policies and compare them
(:mod:`router.offline.diff`). Exit 0: within the thresholds; 1: a threshold was passed; 2: it could not
run (a policy that does not load, traffic that cannot be read)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from router.cli.common import print_issues
from router.errors import PolicyError

PASSED, BREACHED, FAILED = 0, 1, 2


def cmd_policy_diff(args: argparse.Namespace) -> int:
    import numpy as np
    import orjson

    from router.classifier.predict import ClassifierModel
    from router.offline import diff
    from router.offline.traffic import read_traffic
    from router.policy.compile import load_policy

    try:
        old, new = load_policy(args.old), load_policy(args.new)
        traffic = read_traffic(args.traffic, args.model)
    except PolicyError as exc:
        print_issues(exc)
        return FAILED
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    if not traffic.requests:
        print(f"error: {args.traffic}: no request could be read", file=sys.stderr)
        for problem in traffic.problems[:10]:
            print(f"  {problem}", file=sys.stderr)
        return FAILED
    model = ClassifierModel.load() if traffic.with_text and (old.needs_classifier or new.needs_classifier) else None
    vectors: dict[str, np.ndarray] = {}
    try:
        sides = [
            diff.replay(str(p), pol, model, traffic, vectors, args.output_tokens)
            for p, pol in ((args.old, old), (args.new, new))
        ]
    except PolicyError as exc:  # a price nobody knows
        print_issues(exc)
        return FAILED
    report = diff.compare(traffic, *sides)
    if args.json:
        print(orjson.dumps(diff.as_json(report), option=orjson.OPT_INDENT_2).decode())
    else:
        print(diff.render(report, args.show))
    thresholds = diff.Thresholds(args.max_frontier_share, args.max_cost_increase, args.max_changed)
    problems = diff.breaches(report, thresholds)
    for problem in problems:
        print(f"threshold: {problem}", file=sys.stderr)
    return BREACHED if problems else PASSED


def _share(text: str) -> float:
    """A share as 0.3 or 30%."""
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share (0.3 or 30%)")
    return value


def add_diff_command(psub: Any) -> None:
    d = psub.add_parser(
        "diff",
        help="replay traffic through two policies (no upstream is called): route mix, frontier share, cost per "
        "1K requests, changed decisions; exit 1 past a threshold",
    )
    d.add_argument("old", type=Path, help="the policy now (file or directory)")
    d.add_argument("new", type=Path, help="the policy proposed")
    d.add_argument(
        "--traffic",
        type=Path,
        required=True,
        help="JSONL: requests ({id, messages}) or decision records (`router decisions export`)",
    )
    d.add_argument("--model", default="auto", help="alias for lines that name none (default auto)")
    d.add_argument(
        "--output-tokens",
        type=int,
        default=256,
        help="output tokens assumed per request when the record has none (default 256)",
    )
    d.add_argument("--show", type=int, default=20, help="changed requests listed one by one (default 20)")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.add_argument("--max-frontier-share", type=_share, help="fail if the new policy's frontier share is above this")
    d.add_argument("--max-cost-increase", type=_share, help="fail if the cost per 1K requests rises more than this")
    d.add_argument("--max-changed", type=_share, help="fail if more than this share of decisions changed")
    d.set_defaults(func=cmd_policy_diff)
