"""``router status``: the admin view of a running proxy, as a table (pure formatting)."""

from __future__ import annotations

from typing import Any


def _latency(est: dict[str, Any] | None) -> str:
    """The p95 once it has its samples; until then the EWMA, so a slow endpoint shows from its first answer."""
    if not est:
        return "-"
    if est.get("p95_ms") is not None:
        return f"p95 {est['p95_ms']:.0f} ms"
    if est.get("ewma_ms") is not None:
        return f"~{est['ewma_ms']:.0f} ms (ewma, {est.get('samples', 0)} samples)"
    return "-"


def render(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    for c in doc.get("clusters", []):
        lim = c["limits"]
        est = c["estimates"]
        head = (
            f"{c['name']} ({c['kind']}, {c['model']}): in flight {c['in_flight']}/{lim['max_in_flight']}, "
            f"pending {c['pending']}/{lim['max_pending']}, retries {c['retries_in_flight']}; "
            f"ttft {_latency(est['ttft'])}, latency {_latency(est['latency'])}"
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
            timing = ""
            if e.get("estimates"):
                timing = f", ttft {_latency(e['estimates']['ttft'])}, latency {_latency(e['estimates']['latency'])}"
            lines.append(
                f"  {e['state']:<9} {e['url']}{tier}{extra}: in flight {e['in_flight']}, attempts {e['attempts']}, "
                f"failures {e['failures']}, ejections {e['ejections']}{timing}{load}"
            )
    return "\n".join(lines)


def disagreements(views: dict[str, dict[str, Any]]) -> list[str]:
    """Where replicas (by URL) see things differently: the policy they serve, each endpoint's state."""
    out: list[str] = []
    digests: dict[str, list[str]] = {}
    for replica, doc in views.items():
        digests.setdefault(str(doc.get("policy") or "?"), []).append(replica)
    if len(digests) > 1:
        out.append("policy differs: " + "; ".join(f"{d} on {', '.join(r)}" for d, r in sorted(digests.items())))
    states: dict[tuple[str, str], dict[str, list[str]]] = {}
    for replica, doc in views.items():
        for c in doc.get("clusters", []):
            for e in c["endpoints"]:
                states.setdefault((c["name"], e["url"]), {}).setdefault(e["state"], []).append(replica)
    for (cluster, url), by_state in sorted(states.items()):
        if len(by_state) > 1:
            seen = "; ".join(f"{s} on {', '.join(r)}" for s, r in sorted(by_state.items()))
            out.append(f"{cluster} {url}: {seen}")
    return out
