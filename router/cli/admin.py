"""The ``router`` commands for operators: ``status``, ``usage``, ``capacity``, ``decisions`` (a running proxy's
admin API) and ``keys``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def _admin_get(args: argparse.Namespace, path: str, base: str | None = None) -> object | None:
    """GET an admin endpoint of a running proxy (``base``, else the first of ``--url``); None (after
    printing why) on failure."""
    import json
    import urllib.error
    import urllib.request

    url = (base or _urls(args)[0]).rstrip("/") + path
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {args.key}"} if args.key else {})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as resp:
            doc: object = json.loads(resp.read())
            return doc
    except urllib.error.HTTPError as exc:
        print(f"error: {url}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:300]}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"error: {url}: {exc}", file=sys.stderr)
    return None


def _urls(args: argparse.Namespace) -> list[str]:
    """``--url`` may name several replicas (repeated, or comma-separated)."""
    values = args.url or [os.environ.get("ROUTER_URL", "http://127.0.0.1:8080")]
    return [u.strip() for v in values for u in v.split(",") if u.strip()]


def cmd_status(args: argparse.Namespace) -> int:
    """One replica's view; with several ``--url``, each one's, and where they disagree on an endpoint."""
    import json
    import time

    from router.cli.status_table import disagreements, render

    views: dict[str, dict[str, Any]] = {}
    if args.all:  # every replica's view as shared through Redis, asked of one of them
        doc = _admin_get(args, "/v1/admin/clusters?replicas=all")
        if not isinstance(doc, dict) or not isinstance(doc.get("replicas"), dict):
            return 1
        views, wanted = doc["replicas"], len(doc["replicas"])
    else:
        for url in _urls(args):
            doc = _admin_get(args, "/v1/admin/clusters", url)
            if isinstance(doc, dict):
                views[url] = doc
        wanted = len(_urls(args))
    if not views:
        return 1
    if args.json:
        print(json.dumps(views if wanted > 1 or args.all else next(iter(views.values())), indent=2))
    elif wanted == 1 and not args.all:
        print(render(next(iter(views.values()))))
    else:
        for url, doc in views.items():
            age = f", shared {time.time() - doc['at']:.0f} s ago" if "at" in doc else ""
            print(f"== {url} (policy {doc.get('policy') or '?'}{age})\n{render(doc)}\n")
        print("\n".join(disagreements(views)) or "every replica sees every endpoint in the same state")
    return 0 if len(views) == wanted else 1


def cmd_usage(args: argparse.Namespace) -> int:
    import json
    import urllib.parse

    from router.accounting.usage import render

    if args.verify:
        return _verify(args)
    query = {"window": args.window, "group_by": args.group_by}
    if args.date:
        query["date"] = args.date
    doc = _admin_get(args, "/v1/admin/usage?" + urllib.parse.urlencode(query))
    if not isinstance(doc, dict):
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"{doc['window']} {doc['days'][0]}..{doc['days'][1]} (UTC)")
        print(render(doc))
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    import json
    import urllib.parse

    from router.accounting.capacity import render

    query = urllib.parse.urlencode({"days": args.days, "target_utilisation": args.target_utilisation})
    doc = _admin_get(args, "/v1/admin/capacity?" + query)
    if not isinstance(doc, dict):
        return 1
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def cmd_decisions_export(args: argparse.Namespace) -> int:
    """The newest kept decisions as JSONL, oldest first: traffic for ``router policy diff --traffic``."""
    import json

    doc = _admin_get(args, f"/v1/admin/decisions?limit={args.limit}")
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return 1
    rows = list(reversed(doc["data"]))
    lines = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(lines)
    texts = sum(1 for row in rows if row.get("messages") is not None)
    print(f"{len(rows)} decisions ({texts} with their messages) -> {args.out}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    """The budgets' invariant; exit status 1 when any counter differs (for cron and CI)."""
    import json

    from router.accounting.verify import render

    doc = _admin_get(args, "/v1/admin/usage/verify")
    if not isinstance(doc, dict):
        return 1
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0 if doc["exact"] else 1


def cmd_keys_new(args: argparse.Namespace) -> int:
    from router.tenancy.keys import hash_key, new_key

    key = new_key()
    print(f"key (shown once; give it to the service, store it nowhere else): {key}", file=sys.stderr)
    entry = [f'  - sha256: "{hash_key(key)}"', f"    tenant: {args.tenant}"]
    if args.name:
        entry.append(f"    name: {args.name}")
    if args.admin:
        entry.append("    admin: true")
    if args.expires:
        entry.append(f"    expires: {args.expires}")
    print("\n".join(entry))
    return 0


def cmd_keys_hash(args: argparse.Namespace) -> int:
    from router.tenancy.keys import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        print("error: give the key on standard input", file=sys.stderr)
        return 1
    print(hash_key(key))
    return 0


def _admin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        action="append",
        help="the proxy (or ROUTER_URL; default http://127.0.0.1:8080); `status` takes several, one per replica",
    )
    p.add_argument("--key", default=os.environ.get("ROUTER_ADMIN_KEY"), help="admin key (or ROUTER_ADMIN_KEY)")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds")


def add_admin_commands(sub: Any) -> None:
    st = sub.add_parser("status", help="clusters, endpoints, health, ejections and latency of a running proxy")
    _admin_args(st)
    st.add_argument(
        "--all",
        action="store_true",
        help="every replica's view, as each shares it through Redis every few seconds (asked of one --url)",
    )
    st.set_defaults(func=cmd_status)
    us = sub.add_parser("usage", help="spend, tokens and savings of a running proxy's tenants, routes, clusters")
    _admin_args(us)
    us.add_argument("--window", choices=["day", "month"], default="day", help="a UTC day or month")
    us.add_argument("--date", help="YYYYMMDD (day) or YYYYMM (month); default: the current one")
    us.add_argument("--group-by", default="tenant,route,cluster", help="any of tenant,route,cluster")
    us.add_argument(
        "--verify",
        action="store_true",
        help="check the budgets instead: every counter = settled use + open leases (and the ledger); exit 1 if not",
    )
    us.set_defaults(func=cmd_usage)
    cap = sub.add_parser(
        "capacity", help="replicas each pool needs and the break-even volume against its frontier fallback"
    )
    _admin_args(cap)
    cap.add_argument("--days", type=int, default=1, help="days of hourly ledger to read (1-31)")
    cap.add_argument("--target-utilisation", type=float, default=0.7, help="busy share to size pools for (0-1]")
    cap.set_defaults(func=cmd_capacity)
    dec = sub.add_parser("decisions", help="the decision log of a running proxy (ROUTER_DECISION_LOG)")
    dsub = dec.add_subparsers(dest="decisions_command", required=True)
    ex = dsub.add_parser("export", help="the newest decisions as JSONL: traffic for `router policy diff`")
    _admin_args(ex)
    ex.add_argument("--limit", type=int, default=1000, help="how many (the newest; at most ROUTER_DECISION_LOG_MAX)")
    ex.add_argument("--out", default="-", help="a file (default: standard output)")
    ex.set_defaults(func=cmd_decisions_export)
    keys = sub.add_parser("keys", help="API keys: make one, or hash one")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser("new", help="make a key; prints it once, and its keys-file entry")
    kn.add_argument("--tenant", required=True)
    kn.add_argument("--name", default="", help="a label for logs and metrics")
    kn.add_argument("--admin", action="store_true", help="may use the admin API")
    kn.add_argument("--expires", help="UTC date YYYY-MM-DD")
    kn.set_defaults(func=cmd_keys_new)
    kh = ksub.add_parser("hash", help="print the SHA-256 of a key read from standard input")
    kh.set_defaults(func=cmd_keys_hash)
