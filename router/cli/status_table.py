"""``router status``: the admin view of a running proxy, as a table (pure formatting)."""

from __future__ import annotations

from typing import Any


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}"


def render(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    for c in doc.get("clusters", []):
        lim = c["limits"]
        est = c["estimates"]
        head = (
            f"{c['name']} ({c['kind']}, {c['model']}): in flight {c['in_flight']}/{lim['max_in_flight']}, "
            f"pending {c['pending']}/{lim['max_pending']}, retries {c['retries_in_flight']}; "
            f"ttft p95 {_fmt(est['ttft']['p95_ms'])} ms, latency p95 {_fmt(est['latency']['p95_ms'])} ms"
        )
        if not c["available"]:
            head += f"; UNAVAILABLE: {c['unavailable_reason']}"
        lines.append(head)
        for e in c["endpoints"]:
            extra = ""
            if e["ejected"]:
                extra = f" for {e['ejected_for_s']:.0f} s ({e['last_ejection_reason']})"
            load = ""
            if e["scraped"]:
                s = e["scraped"]
                load = f" vllm running {s['running']} waiting {s['waiting']} kv {s['kv_cache_usage']}"
            tier = f" [{e['tier']}]" if e.get("tier", "default") != "default" else ""
            lines.append(
                f"  {e['state']:<9} {e['url']}{tier}{extra}: in flight {e['in_flight']}, attempts {e['attempts']}, "
                f"failures {e['failures']}, ejections {e['ejections']}{load}"
            )
    return "\n".join(lines)
