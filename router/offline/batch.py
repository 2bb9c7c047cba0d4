"""``router classify``: a JSONL file of requests in, one result (or error record) per line out, in order.

The output contract (stable): ``{"id", "task", "task_confidence", "complexity", "route", "cluster", "rule"}``
per line, ``rule`` being the matching rule's name or null when the alias's default or the low-confidence
route was taken; a line that cannot be read gets ``{"id", "line", "error"}`` instead (``id`` null when the
line has none). Lines are read and written in chunks, so memory stays flat on large files.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import RouterError
from router.offline.router import OfflineRouter

CHUNK = 512


@dataclass
class Stats:
    lines: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0


def _parse(line: bytes, n: int, model: str) -> tuple[Any, ChatRequest | dict[str, Any]]:
    """(id, request) or (id, error record)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, {"id": None, "line": n, "error": f"not valid JSON: {exc}"}
    if not isinstance(obj, dict):
        return None, {"id": None, "line": n, "error": "each line must be a JSON object with `id` and `messages`"}
    rid = obj.get("id")
    if rid is None:
        return None, {"id": None, "line": n, "error": "missing `id`"}
    if "messages" not in obj:
        return rid, {"id": rid, "line": n, "error": "missing `messages`"}
    body = {"model": obj["model"] if isinstance(obj.get("model"), str) else model, "messages": obj["messages"]}
    try:
        return rid, parse_chat_request(orjson.dumps(body))
    except RouterError as exc:
        return rid, {"id": rid, "line": n, "error": exc.message}


def _chunks(f: IO[bytes]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for n, line in enumerate(f, 1):
        if line.strip():
            chunk.append((n, line))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def classify_file(router: OfflineRouter, src: Path, dst: Path, model: str = "auto") -> Stats:
    stats = Stats()
    started = time.perf_counter()
    with src.open("rb") as fin, dst.open("wb") as fout:
        for chunk in _chunks(fin):
            parsed = [(n, *_parse(line, n, model)) for n, line in chunk]
            good = [(i, p) for i, (_, _, p) in enumerate(parsed) if isinstance(p, ChatRequest)]
            results = router.classify([p for _, p in good], [{} for _ in good])
            records: list[dict[str, Any]] = [p if isinstance(p, dict) else {} for _, _, p in parsed]
            for (i, _), c in zip(good, results, strict=True):
                n, rid, _ = parsed[i]
                try:
                    d = router.decide(c)
                except RouterError as exc:
                    records[i] = {"id": rid, "line": n, "error": exc.message}
                    continue
                records[i] = {
                    "id": rid,
                    "task": c.features.task,
                    "task_confidence": c.features.task_confidence,
                    "complexity": c.features.complexity,
                    "route": d.route,
                    "cluster": d.primary.cluster,
                    "rule": d.rule,
                }
            for r in records:
                stats.lines += 1
                if "error" in r:
                    stats.errors += 1
                else:
                    stats.ok += 1
                fout.write(orjson.dumps(r) + b"\n")
    stats.seconds = time.perf_counter() - started
    return stats
