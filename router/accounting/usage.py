"""Usage reports from the ledger (pure): spend, tokens, requests and savings against the baseline, by
tenant, route and cluster, for a UTC day or month. ``GET /v1/admin/usage`` and ``router usage``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from router.accounting import windows
from router.accounting.costs import usd
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


def report(ledgers: Mapping[str, Mapping[str, int]], group_by: Sequence[str]) -> dict[str, Any]:
    rows: dict[tuple[str, ...], dict[str, int]] = {}
    total = dict.fromkeys(LEDGER_METRICS, 0)
    for fields in ledgers.values():
        for f, v in fields.items():
            parts = f.split(SEP)
            if len(parts) != 4 or parts[3] not in total:
                continue
            dims = dict(zip(DIMENSIONS, parts[:3], strict=True))
            key = tuple(dims[k] for k in group_by)
            row = rows.setdefault(key, dict.fromkeys(LEDGER_METRICS, 0))
            row[parts[3]] += v
            total[parts[3]] += v

    def shape(values: Mapping[str, int]) -> dict[str, Any]:
        cost, baseline = usd(values["cost_nano"]), usd(values["baseline_nano"])
        return {
            "requests": values["requests"],
            "input_tokens": values["input_tokens"],
            "output_tokens": values["output_tokens"],
            "cost_usd": round(cost, 9),
            "baseline_cost_usd": round(baseline, 9),
            "savings_usd": round(baseline - cost, 9),
            "savings_percent": round(100 * (baseline - cost) / baseline, 2) if baseline else None,
            "cache_hits": values["cache_hits"],
        }

    out_rows = [
        {**dict(zip(group_by, key, strict=True)), **shape(values)}
        for key, values in sorted(rows.items(), key=lambda kv: -kv[1]["cost_nano"])
    ]
    return {"object": "router.usage", "group_by": list(group_by), "rows": out_rows, "total": shape(total)}


def render(doc: Mapping[str, Any]) -> str:
    dims = list(doc["group_by"])
    head = [*dims, "requests", "tokens in", "tokens out", "cost $", "baseline $", "saved $", "saved %", "cache"]
    lines = [head]
    for r in [*doc["rows"], {**dict.fromkeys(dims, ""), **doc["total"], **({dims[0]: "TOTAL"} if dims else {})}]:
        pct = r["savings_percent"]
        lines.append(
            [
                *(str(r.get(d, "")) for d in dims),
                str(r["requests"]),
                str(r["input_tokens"]),
                str(r["output_tokens"]),
                f"{r['cost_usd']:.6f}",
                f"{r['baseline_cost_usd']:.6f}",
                f"{r['savings_usd']:.6f}",
                "-" if pct is None else f"{pct:.1f}",
                str(r["cache_hits"]),
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines)
