"""The ``router`` command: serve, emulate, and policy tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from router.cli.admin import add_admin_commands
from router.errors import PolicyError

if TYPE_CHECKING:
    from router.api.chat import ChatRequest
    from router.offline.router import OfflineRouter

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
        _setup_logging(settings.log_level)
        app = create_app(settings)
    except PolicyError as exc:
        _print_issues(exc)
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


def cmd_train(args: argparse.Namespace) -> int:
    from router.cli.classifier import Selection, run_train

    selection = Selection(holdout=args.holdout, exclude_sources=args.exclude_source)
    try:
        print(run_train(args.data, args.out, selection, None if args.no_cache else args.cache))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from router.cli.classifier import Selection, run_eval

    selection = Selection(holdout=args.holdout, sources=args.source)
    try:
        print(run_eval(args.data, args.artifact, selection, None if args.no_cache else args.cache, args.hard_source))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _offline(policies: Path, classifier: bool = True) -> OfflineRouter:
    from router.classifier.predict import ClassifierModel
    from router.offline.router import OfflineRouter
    from router.policy.compile import load_policy

    policy = load_policy(policies)
    return OfflineRouter(policy, ClassifierModel.load() if classifier else None)


def _chat_from(obj: object) -> ChatRequest:
    """An OpenAI chat body, or a bare {"messages": [...]} (model defaults to `auto`)."""
    import orjson

    from router.api.chat import parse_chat_request
    from router.errors import InvalidRequest

    if not isinstance(obj, dict):
        raise InvalidRequest("each request must be a JSON object")
    return parse_chat_request(orjson.dumps({"model": "auto", **obj}))


def cmd_explain(args: argparse.Namespace) -> int:
    import orjson

    from router.errors import RouterError

    if args.message is not None:
        body: object = {"model": args.model, "messages": [{"role": "user", "content": args.message}]}
    else:
        text = sys.stdin.read() if str(args.input) == "-" else Path(args.input).read_text(encoding="utf-8")
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            print(f"error: {args.input}: not valid JSON: {exc}", file=sys.stderr)
            return 1
    headers = dict(h.split(":", 1) for h in args.header)
    try:
        router = _offline(args.policies)
        chat = _chat_from(body)
        doc = router.explain(chat, {k.strip().lower(): v.strip() for k, v in headers.items()})
    except PolicyError as exc:
        _print_issues(exc)
        return 1
    except RouterError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from router.offline.batch import classify_file

    try:
        router = _offline(args.policies)
    except PolicyError as exc:
        _print_issues(exc)
        return 1
    try:
        stats = classify_file(router, args.input, args.output, args.model)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{stats.lines} lines: {stats.ok} classified, {stats.errors} error records, "
        f"{stats.seconds:.1f} s ({stats.lines / max(stats.seconds, 1e-9):.0f} lines/s) -> {args.output}",
        file=sys.stderr,
    )
    return 0


def cmd_policy_test(args: argparse.Namespace) -> int:
    from router.offline.golden import golden_files, load_cases, render, run_cases

    files = golden_files(args.path)
    if not files:
        print(f"error: no *.test.yaml files at {args.path}", file=sys.stderr)
        return 1
    try:
        cases = load_cases(files)
        router = _offline(args.path if Path(args.path).is_dir() else Path(args.path).parent)
    except PolicyError as exc:
        _print_issues(exc)
        return 1
    outcomes = run_cases(router, cases)
    print(render(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


def _data_args(p: argparse.ArgumentParser) -> None:
    from router.classifier.paths import DEFAULT_CACHE

    p.add_argument("--data", type=Path, nargs="+", required=True, help="JSONL files (see router/classifier/data)")
    p.add_argument("--holdout", type=float, default=0.0, help="hash share held out of training / kept for eval")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache (default .cache/embeddings.npz)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="hybrid-llm-router")
    sub = parser.add_subparsers(dest="command", required=True)

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

    from router.classifier.paths import DEFAULT_ARTIFACT

    tr = sub.add_parser("train", help="train the task and complexity heads from labelled JSONL")
    _data_args(tr)
    tr.add_argument("--out", type=Path, required=True, help="artifact to write (.npz)")
    tr.add_argument("--exclude-source", action="append", default=[], help="leave a dataset out (repeatable)")
    tr.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="score the heads: task F1s and confusion, cost-quality curve and APGR")
    _data_args(ev)
    ev.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT, help="heads to evaluate (default: shipped)")
    ev.add_argument("--source", action="append", default=[], help="evaluate only this dataset (repeatable)")
    ev.add_argument(
        "--hard-source", action="append", default=[], help="unlabelled dataset that should score as hard (AUC)"
    )
    ev.set_defaults(func=cmd_eval)

    ex = sub.add_parser("explain", help="the full decision trace for one request, offline (no upstream is called)")
    ex.add_argument("--policies", type=Path, default=Path("policies"), help="policy file or directory")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="a chat completions body as JSON (a file, or - for stdin)")
    src.add_argument("--message", help="a single user message")
    ex.add_argument("--model", default="auto", help="alias for --message (default auto)")
    ex.add_argument("--header", action="append", default=[], help="request header 'name: value' (repeatable)")
    ex.set_defaults(func=cmd_explain)

    cl = sub.add_parser("classify", help="classify and route a JSONL file of requests (id, messages per line)")
    cl.add_argument("--policies", type=Path, default=Path("policies"), help="policy file or directory")
    cl.add_argument("--input", type=Path, required=True, help="JSONL: one {id, messages} object per line")
    cl.add_argument("--output", type=Path, required=True, help="JSONL: one result or error record per line")
    cl.add_argument("--model", default="auto", help="alias to route as, unless a line names one (default auto)")
    cl.set_defaults(func=cmd_classify)

    add_admin_commands(sub)

    policy = sub.add_parser("policy", help="policy tools")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    check = psub.add_parser("check", help="validate policy files; exit 0 if valid, 1 if not")
    check.add_argument("path", type=Path)
    check.set_defaults(func=cmd_policy_check)
    ptest = psub.add_parser("test", help="run the golden cases (*.test.yaml) beside a policy; exit 0 if all pass")
    ptest.add_argument("path", type=Path, help="policy directory (or one *.test.yaml file in it)")
    ptest.set_defaults(func=cmd_policy_test)
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
