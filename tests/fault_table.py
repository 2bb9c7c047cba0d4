"""Every fault of the fault upstream (tests/faults.py) through the proxy, scored: rescued (the exact answer),
a clean error (an OpenAI error, or a stream that ends with an error event and ``[DONE]``), or a truncated
success (an answer cut short but presented as complete: never acceptable).

Each fault model gets a cluster of its own whose fallback is ``fb-ok``; the clusters share the upstream's
one URL (``shared``) or each has its own path on it (``separate``). tests/functional/test_fault_table.py
runs it for vLLM and frontier clusters and asserts it; with ``-s`` it prints the tables of
docs/resilience.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tests.faults import ANSWER

FAULTS = (
    "fb-429-ra",
    "fb-429",
    "fb-500-once",
    "fb-503",
    "fb-reset",
    "fb-hang",
    "fb-slow-first",
    "fb-cut",
    "fb-stall",
    "fb-malformed",
    "fb-no-done",
    "fb-context",
    "fb-filter",
)
TIMEOUTS = "{connect_s: 1, first_byte_s: 1, total_s: 5, idle_s: 0.5}"


def policy(base: str, shape: str, kind: str) -> str:
    """One cluster per fault (and ``ok``), each falling back to ``ok``; ``kind`` vllm or frontier."""
    lines = ["version: 1", "clusters:"]
    for model in (*FAULTS, "fb-ok"):
        name = "c-" + model.removeprefix("fb-")
        where = base if shape == "shared" else base.removesuffix("/v1") + f"/{name}/v1"
        # The healthy cluster is every other's fallback; as a provider it takes the continuation of a stream.
        extra = (", prefill: true" if kind == "frontier" else "") if model == "fb-ok" else ", fallbacks: [c-ok]"
        if kind == "vllm":
            lines.append(
                f"  {name}: {{kind: vllm, model: {model}, endpoints: ['{where}'], max_attempts: 3, "
                f"timeouts: {TIMEOUTS}, health_check: {{interval_s: 0.5, metrics_interval_s: 0}}{extra}}}"
            )
        else:
            lines.append(
                f"  {name}: {{kind: frontier, model: openai/{model}, api_base: '{where}', "
                f"api_key_env: TEST_FRONTIER_KEY, default_max_tokens: 64, timeouts: {TIMEOUTS}, "
                f"price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 1}}{extra}}}"
            )
    lines.append("models:")
    lines += [f"  {m}: {{cluster: c-{m.removeprefix('fb-')}}}" for m in (*FAULTS, "fb-ok")]
    lines.append(
        "costs: {baseline_model: openai/gpt-4o, baseline_price: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}}"
    )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Row:
    fault: str
    stream: bool
    outcome: str  # rescued | clean error | TRUNCATED
    status: int
    attempts: int  # requests the faulty model received
    seconds: float
    detail: str


def _text_of_stream(raw: bytes) -> tuple[str, bool, bool]:
    """The streamed text, whether an error event came, and whether it ended with [DONE] (and was one
    completion: a single id)."""
    text: list[str] = []
    ids: set[str] = set()
    error = False
    for block in raw.split(b"\n\n"):
        if not block.startswith(b"data: ") or block == b"data: [DONE]":
            continue
        try:
            obj = orjson.loads(block[6:])
        except orjson.JSONDecodeError:
            return "".join(text) + "<not JSON>", error, False
        if "error" in obj:
            error = True
            continue
        ids.add(str(obj.get("id")))
        for c in obj.get("choices") or []:
            text.append((c.get("delta") or {}).get("content") or "")
    return "".join(text), error, raw.rstrip().endswith(b"data: [DONE]") and len(ids) == 1


async def score(client: Any, fault: str, stream: bool, seen: Callable[[str], int]) -> Row:
    body = {"model": fault, "messages": [{"role": "user", "content": "tell me"}], "stream": stream}
    before = seen(fault)
    started = time.monotonic()
    resp = await client.post("/v1/chat/completions", json=body)
    raw = await resp.read()
    seconds = time.monotonic() - started
    attempts = seen(fault) - before
    if resp.status != 200:
        detail = orjson.loads(raw).get("error", {}).get("message", "")[:80]
        return Row(fault, stream, "clean error", resp.status, attempts, seconds, detail)
    if stream:
        text, error, done = _text_of_stream(raw)
        if error and done:
            return Row(fault, stream, "clean error", 200, attempts, seconds, "error event, then [DONE]")
    else:
        text = orjson.loads(raw)["choices"][0]["message"]["content"]
        done = True
    outcome = "rescued" if text == ANSWER and done else "TRUNCATED"
    return Row(fault, stream, outcome, 200, attempts, seconds, resp.headers.get("x-router-cluster", ""))


async def run_all(client: Any, app_state: Any, faults: Sequence[str] = FAULTS) -> list[Row]:
    def seen(model: str) -> int:
        return len(app_state.seen.get(model, []))

    rows = []
    for fault in faults:
        for stream in (False, True):
            app_state.seen.pop(fault, None)  # each run starts fresh (the *-once faults fail once again)
            rows.append(await score(client, fault, stream, seen))
    return rows


def render(rows: Sequence[Row]) -> str:
    out = [
        "| fault | stream | outcome | status | attempts at the fault | seconds | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.fault} | {'yes' if r.stream else 'no'} | {r.outcome} | {r.status} | {r.attempts} | "
            f"{r.seconds:.2f} | {r.detail} |"
        )
    return "\n".join(out)
