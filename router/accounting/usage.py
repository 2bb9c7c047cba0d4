"""Usage reports from the ledger (pure): spend, tokens, requests and savings against the baseline, by
tenant, route and cluster, for a UTC day or month. ``GET /v1/admin/usage`` and ``router usage``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from router.accounting import windows
from router.accounting.costs import usd
from router.accounting.economics import Economics, Tally
from router.errors import InvalidRequest
from router.state.base import LEDGER_METRICS, SEP

DIMENSIONS = ("tenant", "route", "cluster")


def days_for(window: str, date: str | None, now: float) -> list[str]:
    """The ledger days a report covers; bad parameters are a 400 naming the parameter."""
    if window == "day":
        label = date or windows.day(now).label
        if not re.fullmatch(r"\d{8}", label):
            raise InvalidRequest("`date` must be YYYYMMDD for window=day.", param="date")
        try:
            dt.date(int(label[:4]), int(label[4:6]), int(label[6:]))
        except ValueError:
            raise InvalidRequest(f"`date` {label!r} is not a calendar day.", param="date") from None
        return [label]
    if window == "month":
        label = date or windows.month(now).label
        if not re.fullmatch(r"\d{4}(0[1-9]|1[0-2])", label):
            raise InvalidRequest("`date` must be YYYYMM for window=month.", param="date")
        return windows.days_of_month(label)
    raise InvalidRequest("`window` must be `day` or `month`.", param="window")


def group_keys(value: str | None) -> tuple[str, ...]:
    if not value:
        return DIMENSIONS
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    bad = [k for k in keys if k not in DIMENSIONS]
    if bad:
        raise InvalidRequest(f"`group_by` takes {', '.join(DIMENSIONS)}; not {', '.join(bad)}.", param="group_by")
    return keys


def report(
    ledgers: Mapping[str, Mapping[str, int]], group_by: Sequence[str], econ: Economics | None = None
) -> dict[str, Any]:
    """Rows grouped by ``group_by``; with ``econ`` (the window's pool economics) each row also carries its
    share of the pools' idle cost and its net savings (baseline minus marginal and idle cost)."""
    triples: dict[tuple[str, str, str], dict[str, int]] = {}
    for fields in ledgers.values():
        for f, v in fields.items():
            parts = f.split(SEP)
            if len(parts) != 4 or parts[3] not in LEDGER_METRICS:
                continue
            values = triples.setdefault((parts[0], parts[1], parts[2]), dict.fromkeys(LEDGER_METRICS, 0))
            values[parts[3]] += v
    rows: dict[tuple[str, ...], dict[str, float]] = {}
    total: dict[str, float] = dict.fromkeys((*LEDGER_METRICS, "idle_usd"), 0)
    for triple, values in triples.items():
        dims = dict(zip(DIMENSIONS, triple, strict=True))
        row = rows.setdefault(tuple(dims[k] for k in group_by), dict.fromkeys(total, 0))
        idle = 0.0
        if econ is not None:
            idle = econ.idle_share(triple[2], Tally(0, values["input_tokens"], values["output_tokens"]))
        amounts: list[tuple[str, float]] = [*values.items(), ("idle_usd", idle)]
        for m, amount in amounts:
            row[m] += amount
            total[m] += amount
    if econ is not None:
        total["idle_usd"] += econ.unallocated_idle()

    def shape(values: Mapping[str, float]) -> dict[str, Any]:
        cost, baseline = usd(int(values["cost_nano"])), usd(int(values["baseline_nano"]))
        out = {
            "requests": int(values["requests"]),
            "input_tokens": int(values["input_tokens"]),
            "output_tokens": int(values["output_tokens"]),
            "cost_usd": round(cost, 9),
            "baseline_cost_usd": round(baseline, 9),
            "savings_usd": round(baseline - cost, 9),
            "savings_percent": round(100 * (baseline - cost) / baseline, 2) if baseline else None,
            "cache_hits": int(values["cache_hits"]),
        }
        if econ is not None:
            net = baseline - cost - values["idle_usd"]
            out["idle_usd"] = round(values["idle_usd"], 9)
            out["net_savings_usd"] = round(net, 9)
            out["net_savings_percent"] = round(100 * net / baseline, 2) if baseline else None
        return out

    out_rows = [
        {**dict(zip(group_by, key, strict=True)), **shape(values)}
        for key, values in sorted(rows.items(), key=lambda kv: -kv[1]["cost_nano"])
    ]
    doc = {"object": "router.usage", "group_by": list(group_by), "rows": out_rows, "total": shape(total)}
    if econ is not None:
        doc["economics"] = econ.as_json()
    return doc


def render(doc: Mapping[str, Any]) -> str:
    dims = list(doc["group_by"])
    net = "net_savings_usd" in doc["total"]
    head = [*dims, "requests", "tokens in", "tokens out", "cost $", "baseline $", "saved $", "saved %", "cache"]
    head += ["idle $", "net saved $", "net %"] if net else []
    lines = []
    for r in [*doc["rows"], {**dict.fromkeys(dims, ""), **doc["total"], **({dims[0]: "TOTAL"} if dims else {})}]:
        line = [
            *(str(r.get(d, "")) for d in dims),
            str(r["requests"]),
            str(r["input_tokens"]),
            str(r["output_tokens"]),
            money(r["cost_usd"]),
            money(r["baseline_cost_usd"]),
            money(r["savings_usd"]),
            percent(r["savings_percent"]),
            str(r["cache_hits"]),
        ]
        if net:
            line += [money(r["idle_usd"]), money(r["net_savings_usd"]), percent(r["net_savings_percent"])]
        lines.append(line)
    out = table(head, lines)
    econ = doc.get("economics")
    if econ:
        out += "\n\n" + render_economics(econ)
    return out


def render_economics(econ: Mapping[str, Any]) -> str:
    """The pools with their idle time paid for, and each route's effective cost per 1K tokens."""
    pools = [
        [
            p["cluster"],
            str(p["replicas"]),
            percent(None if p["utilisation"] is None else 100 * p["utilisation"]),
            percent(None if p["vllm_utilisation"] is None else 100 * p["vllm_utilisation"]),
            str(p["input_tokens"] + p["output_tokens"]),
            "-" if p["vllm_input_tokens"] is None else str(p["vllm_input_tokens"] + p["vllm_output_tokens"]),
            money(p["fixed_usd"]),
            money(p["idle_usd"]),
            money(p["effective_usd_per_mtok_input"], 4),
            money(p["effective_usd_per_mtok_output"], 4),
            money(p["effective_usd_per_1k_tokens"]),
            money(p["baseline_usd_per_1k_tokens"]),
        ]
        for p in econ["pools"]
    ]
    routes = [
        [
            r["route"],
            str(r["tokens"]),
            money(r["cost_usd"]),
            money(r["idle_usd"]),
            money(r["effective_usd_per_1k_tokens"]),
            money(r["baseline_usd_per_1k_tokens"]),
            money(r["net_savings_usd"]),
        ]
        for r in econ["routes"]
    ]
    hours = econ["window_s"] / 3600
    t = econ["total"]
    notes = [f"! {p['cluster']}: {p['note']}" for p in econ["pools"] if p.get("note")]
    return "\n".join(
        [
            f"pools over {hours:.1f} h (fixed cost: every replica's GPU-hours, busy or idle)",
            table(
                [
                    "pool",
                    "replicas",
                    "util %",
                    "vllm util %",
                    "tokens",
                    "vllm tokens",
                    "fixed $",
                    "idle $",
                    "$/M in",
                    "$/M out",
                    "$/1K",
                    "baseline $/1K",
                ],
                pools,
            ),
            "",
            "routes (frontier spend + each pool's fixed cost shared by busy time)",
            table(["route", "tokens", "cost $", "of it idle $", "$/1K", "baseline $/1K", "net saved $"], routes),
            "",
            f"net savings: {money(t['net_savings_usd'])} $ ({percent(t['net_savings_percent'])} %) = baseline "
            f"{money(t['baseline_usd'])} - marginal {money(t['marginal_usd'])} - idle {money(t['idle_usd'])}",
            *notes,
        ]
    )


def money(x: float | None, digits: int = 6) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def percent(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [list(head), *map(list, rows)]
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines)
