"""Reading the load gauges out of a vLLM replica's Prometheus ``/metrics`` page.

A vLLM page carries hundreds of series (histograms per model and engine); the balancer needs three
gauges, and the pool economics two token counters. Parsing the whole page with
``prometheus_client.parser`` cost ≈ 60x more than picking out the wanted lines (measured on the
emulator's page), so this reads only lines that start with the wanted names; a unit test checks it
against ``prometheus_client``'s parser.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNNING = b"vllm:num_requests_running"
WAITING = b"vllm:num_requests_waiting"
KV_CACHE = (b"vllm:kv_cache_usage_perc", b"vllm:gpu_cache_usage_perc")  # the older name before v0.10
PROMPT_TOKENS = b"vllm:prompt_tokens_total"  # counters: what the engine prefilled and generated since it
GENERATION_TOKENS = b"vllm:generation_tokens_total"  # started (the pool economics' cross-check)
WANTED = (RUNNING, WAITING, *KV_CACHE, PROMPT_TOKENS, GENERATION_TOKENS)


@dataclass(frozen=True, slots=True)
class VllmLoad:
    running: float | None
    waiting: float | None
    kv: float | None
    prompt_tokens: float | None = None
    generation_tokens: float | None = None


def _value(line: bytes) -> float | None:
    """The sample value of ``name{labels} value [timestamp]`` (label values may hold spaces)."""
    rest = line[line.rindex(b"}") + 1 :] if b"}" in line else line.split(None, 1)[1] if b" " in line else b""
    parts = rest.split()
    if not parts:
        return None
    try:
        return float(parts[0])
    except ValueError:
        return None


def _name(line: bytes) -> bytes:
    end = len(line)
    for sep in (b"{", b" "):
        i = line.find(sep)
        if 0 <= i < end:
            end = i
    return line[:end]


def vllm_load(page: bytes) -> VllmLoad:
    """Sums of running and waiting (and of the token counters) over every engine and model on the page;
    the highest KV usage."""
    running: float | None = None
    waiting: float | None = None
    kv: float | None = None
    sums: dict[bytes, float] = {}
    for line in page.split(b"\n"):
        if not line.startswith(b"vllm:"):
            continue
        name = _name(line)
        if name not in WANTED:
            continue
        value = _value(line)
        if value is None:
            continue
        if name == RUNNING:
            running = (running or 0.0) + value
        elif name == WAITING:
            waiting = (waiting or 0.0) + value
        elif name in KV_CACHE:
            kv = value if kv is None else max(kv, value)
        else:
            sums[name] = sums.get(name, 0.0) + value
    return VllmLoad(running, waiting, kv, sums.get(PROMPT_TOKENS), sums.get(GENERATION_TOKENS))
