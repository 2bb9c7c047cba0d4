"""The ``router`` command: serve, emulate, and policy tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from router.errors import PolicyError

log = logging.getLogger("router")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    access = logging.getLogger("router.access")
    access.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    for noisy in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_issues(exc: PolicyError) -> None:
    for issue in exc.issues:
        print(f"error: {issue}", file=sys.stderr)
    print(f"{len(exc.issues)} error(s)", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvloop
    from aiohttp import web

    from router.http.app import create_app
    from router.settings import Settings

    try:
        settings = Settings.from_env(
            os.environ,
            policies=args.policies,
            host=args.host,
            port=args.port,
            emulate_missing=True if args.emulate_missing else None,
        )
        _setup_logging(settings.log_level)
        app = create_app(settings)
    except PolicyError as exc:
        _print_issues(exc)
        return 2
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.drain_timeout_s,
        handler_cancellation=True,
        access_log=None,
        print=lambda msg: log.info("%s", str(msg).strip("= \n")),
        loop=loop,
    )
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    import uvloop
    from aiohttp import web
    from pydantic import ValidationError

    from router.emulator.app import create_emulator
    from router.emulator.config import EmulatorConfig

    _setup_logging("INFO")
    try:
        config = EmulatorConfig(
            model=args.model,
            lora=[a for a in args.lora.split(",") if a],
            latency_ms=args.latency_ms,
            ttft_ms=args.ttft_ms,
            tokens_per_second=args.tokens_per_second,
            completion_tokens=args.completion_tokens,
            failure_rate=args.failure_rate,
            failure_status=args.failure_status,
            max_num_seqs=args.max_num_seqs,
            seed=args.seed,
        )
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(
        create_emulator(config),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda msg: log.info("emulator %s: %s", config.model, str(msg).strip("= \n")),
        loop=loop,
    )
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from router.policy.compile import load_policy

    try:
        policy = load_policy(args.path)
    except PolicyError as exc:
        _print_issues(exc)
        return 1
    for warning in policy.warnings:
        print(f"warning: {warning}")
    print(
        f"ok: {len(policy.files)} file(s), {len(policy.clusters)} clusters, {len(policy.models)} model aliases, "
        f"{len(policy.routes)} routes"
    )
    return 0


def cmd_policy_reference(args: argparse.Namespace) -> int:
    from router.policy.reference import render_reference

    text = render_reference()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="hybrid-llm-router")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--policies", type=Path, help="policy file or directory (default: ROUTER_POLICIES or policies)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument(
        "--emulate-missing",
        action="store_true",
        help="serve `emulated` endpoints and key-less frontier clusters from local emulators",
    )
    serve.set_defaults(func=cmd_serve)

    emu = sub.add_parser("emulate", help="run an upstream emulator (vLLM's OpenAI API and /metrics)")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, required=True)
    emu.add_argument("--model", default="emulated-8b", help="model name served")
    emu.add_argument("--lora", default="", help="comma-separated LoRA adapter names also served")
    emu.add_argument("--latency-ms", type=float, default=0.0, help="extra delay of non-streamed answers")
    emu.add_argument("--ttft-ms", type=float, default=0.0, help="time to first streamed token")
    emu.add_argument("--tokens-per-second", type=float, default=0.0, help="generation speed (0: instant)")
    emu.add_argument("--completion-tokens", type=int, default=16, help="tokens generated without max_tokens")
    emu.add_argument("--failure-rate", type=float, default=0.0, help="share of requests that fail")
    emu.add_argument("--failure-status", type=int, default=500, help="status of injected failures")
    emu.add_argument("--max-num-seqs", type=int, default=256, help="running slots (more wait)")
    emu.add_argument("--seed", type=int, default=None, help="seed of the failure draws")
    emu.set_defaults(func=cmd_emulate)

    policy = sub.add_parser("policy", help="policy tools")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    check = psub.add_parser("check", help="validate policy files; exit 0 if valid, 1 if not")
    check.add_argument("path", type=Path)
    check.set_defaults(func=cmd_policy_check)
    ref = psub.add_parser("reference", help="print the policy reference (Markdown) generated from the schema")
    ref.add_argument("--out", help="write to this file")
    ref.set_defaults(func=cmd_policy_reference)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
