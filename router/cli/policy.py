"""The policy author's commands: ``router policy check|lint|test|diff|reference``, and the offline decision of
``router explain`` (one request) and ``router classify`` (a JSONL file)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.cli.common import print_issues
from router.cli.policy_diff import add_diff_command
from router.errors import PolicyError, PolicyIssue

if TYPE_CHECKING:
    from router.api.chat import ChatRequest
    from router.offline.router import OfflineRouter
    from router.policy.compiled import Policy


def _checked(path: Path) -> tuple[Policy | None, list[PolicyIssue]]:
    """The policy at ``path`` and its lint findings; None (after printing every error) if it does not load."""
    from router.policy.compile import load_policy
    from router.policy.lint import lint

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print_issues(exc)
        return None, []
    return policy, lint(policy)


def cmd_policy_check(args: argparse.Namespace) -> int:
    policy, findings = _checked(args.path)
    if policy is None:
        return 1
    for warning in policy.warnings:
        print(f"warning: {warning}")
    for issue in findings:
        print(f"warning: {issue}")
    print(
        f"ok: {len(policy.files)} file(s), {len(policy.clusters)} clusters, {len(policy.models)} model aliases, "
        f"{len(policy.routes)} routes"
    )
    return 0


def cmd_policy_lint(args: argparse.Namespace) -> int:
    """What loads but can never take effect; exit 1 when there is any (for CI)."""
    policy, findings = _checked(args.path)
    if policy is None:
        return 1
    for issue in findings:
        print(f"warning: {issue}")
    print(f"{len(findings)} finding(s)" if findings else "ok: nothing that can never take effect")
    return 1 if findings else 0


def cmd_policy_reference(args: argparse.Namespace) -> int:
    from router.policy.reference import render_reference

    text = render_reference()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text)
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
        print_issues(exc)
        return 1
    outcomes = run_cases(router, cases)
    print(render(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


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
    if args.url:
        return _explain_remote(args, body, {k.strip(): v.strip() for k, v in headers.items()})
    try:
        router = _offline(args.policies)
        chat = _chat_from(body)
        doc = router.explain(chat, {k.strip().lower(): v.strip() for k, v in headers.items()})
    except PolicyError as exc:
        print_issues(exc)
        return 1
    except RouterError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    return 0


def _explain_remote(args: argparse.Namespace, body: object, headers: dict[str, str]) -> int:
    """The running proxy's explain (``POST /v1/route/explain``): its policy, its loaded encoder, in
    milliseconds instead of the seconds it takes to load one here. An admin key gets the whole trace."""
    import urllib.error
    import urllib.request

    import orjson

    url = args.url.rstrip("/") + "/v1/route/explain"
    send = {"Content-Type": "application/json", **headers}
    if args.key:
        send["Authorization"] = f"Bearer {args.key}"
    request = urllib.request.Request(url, data=orjson.dumps(body), headers=send, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as resp:
            doc = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        print(f"error: {url}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:300]}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {url}: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from router.offline.batch import classify_file

    try:
        router = _offline(args.policies)
    except PolicyError as exc:
        print_issues(exc)
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


def add_policy_commands(sub: Any) -> None:
    ex = sub.add_parser("explain", help="the full decision trace for one request, offline (no upstream is called)")
    ex.add_argument("--policies", type=Path, default=Path("policies"), help="policy file or directory")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="a chat completions body as JSON (a file, or - for stdin)")
    src.add_argument("--message", help="a single user message")
    ex.add_argument("--model", default="auto", help="alias for --message (default auto)")
    ex.add_argument("--header", action="append", default=[], help="request header 'name: value' (repeatable)")
    ex.add_argument(
        "--url", help="ask a running proxy instead (its policy and loaded encoder: milliseconds, not seconds)"
    )
    ex.add_argument("--key", default=os.environ.get("ROUTER_ADMIN_KEY"), help="with --url: an admin key (full trace)")
    ex.add_argument("--timeout", type=float, default=10.0, help="with --url: seconds")
    ex.set_defaults(func=cmd_explain)

    cl = sub.add_parser("classify", help="classify and route a JSONL file of requests (id, messages per line)")
    cl.add_argument("--policies", type=Path, default=Path("policies"), help="policy file or directory")
    cl.add_argument("--input", type=Path, required=True, help="JSONL: one {id, messages} object per line")
    cl.add_argument("--output", type=Path, required=True, help="JSONL: one result or error record per line")
    cl.add_argument("--model", default="auto", help="alias to route as, unless a line names one (default auto)")
    cl.set_defaults(func=cmd_classify)

    policy = sub.add_parser("policy", help="policy tools")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    check = psub.add_parser("check", help="validate policy files; exit 0 if valid, 1 if not")
    check.add_argument("path", type=Path)
    check.set_defaults(func=cmd_policy_check)
    lint_cmd = psub.add_parser(
        "lint", help="rules that never match (shadowed by an earlier one), clusters never used; exit 1 if any"
    )
    lint_cmd.add_argument("path", type=Path)
    lint_cmd.set_defaults(func=cmd_policy_lint)
    ptest = psub.add_parser("test", help="run the golden cases (*.test.yaml) beside a policy; exit 0 if all pass")
    ptest.add_argument("path", type=Path, help="policy directory (or one *.test.yaml file in it)")
    ptest.set_defaults(func=cmd_policy_test)
    add_diff_command(psub)
    ref = psub.add_parser("reference", help="print the policy reference (Markdown) generated from the schema")
    ref.add_argument("--out", help="write to this file")
    ref.set_defaults(func=cmd_policy_reference)
