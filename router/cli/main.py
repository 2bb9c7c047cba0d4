"""The ``router`` command: its parser, gathered from each group of subcommands, and the entry point.

Each group lives in its own module and imports what it needs only when its command runs, so that
``router --help`` and ``router serve`` never load the classifier's heavy libraries."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from router.cli.admin import add_admin_commands
from router.cli.policy import add_policy_commands
from router.cli.serve import add_serve_commands
from router.cli.training import add_training_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="hybrid-llm-router")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_commands(sub)
    add_training_commands(sub)
    add_policy_commands(sub)
    add_admin_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
