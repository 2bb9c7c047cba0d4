"""``router serve`` (the proxy) and ``router emulate`` (an upstream emulator)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from router.cli.common import print_issues, setup_logging
from router.errors import PolicyError

log = logging.getLogger("router")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvloop

    from router.http.app import create_app
    from router.http.serve import serve
    from router.settings import Settings

    try:
        settings = Settings.from_env(
            os.environ,
            policies=args.policies,
            host=args.host,
            port=args.port,
            emulate_missing=True if args.emulate_missing else None,
            admin_port=args.admin_port,
        )
        setup_logging(settings.log_level)
        app = create_app(settings)
    except PolicyError as exc:
        print_issues(exc)
        return 2
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(app, settings))
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    import uvloop
    from aiohttp import web
    from pydantic import ValidationError

    from router.emulator.app import create_emulator
    from router.emulator.config import EmulatorConfig

    setup_logging("INFO")
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


def add_serve_commands(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--policies", type=Path, help="policy file or directory (default: ROUTER_POLICIES or policies)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument(
        "--admin-port",
        type=int,
        help="a second listener for /metrics, /readyz details and the admin API (default: ROUTER_ADMIN_PORT, off)",
    )
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
