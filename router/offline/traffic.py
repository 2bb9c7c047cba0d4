"""Traffic for ``router policy diff``: a JSONL file of requests to route again, one per line.

Two kinds of line are read, and may be mixed:

- a request with its text: ``{"id", "messages"}`` plus optionally ``model``, ``tenant``, ``headers``
  (the ``router classify`` input; the classifier data's rows are such lines);
- a decision record (``router decisions export``, the proxy's decision log): ``request_id``, ``model``,
  ``tenant``, ``headers``, ``features`` and the classification the proxy made (``task``,
  ``confidence``, ``complexity``), with ``messages`` only when the proxy captured content. Without
  messages the request is routed on its recorded features and classification: rules on its text
  (``regex``, ``keywords``) and custom tasks the new policy adds cannot be judged, and the report says
  how many requests were routed that way.

A line that cannot be read is reported with its number, never skipped in silence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import RouterError
from router.types import RequestFeatures

MAX_LINES = 1_000_000


@dataclass(frozen=True)
class Replay:
    """One request of the traffic, ready to route: its text (``chat``) or its recorded ``features``."""

    id: str
    line: int
    model: str
    tenant: str | None
    headers: Mapping[str, str]
    chat: ChatRequest | None
    recorded: RequestFeatures | None
    output_tokens: int | None  # what it produced, when the record says


@dataclass
class Traffic:
    requests: list[Replay]
    problems: list[str]  # "FILE:LINE: why", one per line that could not be read

    @property
    def with_text(self) -> int:
        return sum(1 for r in self.requests if r.chat is not None)


def read_traffic(path: Path, model: str = "auto") -> Traffic:
    traffic = Traffic([], [])
    for n, raw in _lines(path):
        try:
            traffic.requests.append(_replay(orjson.loads(raw), n, model))
        except orjson.JSONDecodeError as exc:
            traffic.problems.append(f"{path}:{n}: not valid JSON: {exc}")
        except (ValueError, RouterError) as exc:
            traffic.problems.append(f"{path}:{n}: {exc.message if isinstance(exc, RouterError) else exc}")
    return traffic


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if n > MAX_LINES:
                raise ValueError(f"{path}: more than {MAX_LINES} lines; replay a sample")
            if line.strip():
                yield n, line


def _replay(obj: Any, n: int, default_model: str) -> Replay:
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object (a request with `messages`, or a decision record)")
    rid = obj.get("id", obj.get("request_id"))
    if rid is None:
        raise ValueError("missing `id` (or a decision record's `request_id`)")
    model = obj.get("model") or obj.get("alias") or default_model
    if not isinstance(model, str):
        raise ValueError("`model` must be a string")
    tenant = obj.get("tenant")
    headers = obj.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError("`headers` must be an object of strings")
    headers = {str(k).lower(): v for k, v in headers.items()}
    usage = obj.get("usage")
    output = usage.get("output_tokens") if isinstance(usage, dict) else None
    common: dict[str, Any] = {
        "id": str(rid),
        "line": n,
        "model": model,
        "tenant": tenant if isinstance(tenant, str) else None,
        "headers": headers,
        "output_tokens": output if isinstance(output, int) else None,
    }
    if obj.get("messages") is not None:
        body = {"model": model, "messages": obj["messages"]}
        if isinstance(obj.get("features"), dict) and obj["features"].get("stream") is True:
            body["stream"] = True
        return Replay(chat=parse_chat_request(orjson.dumps(body)), recorded=None, **common)
    feats = obj.get("features")
    if not isinstance(feats, dict):
        raise ValueError("neither `messages` nor a decision record's `features`: nothing to route on")
    return Replay(chat=None, recorded=_recorded(obj, feats, model, common), **common)


def _recorded(obj: dict[str, Any], feats: dict[str, Any], model: str, common: dict[str, Any]) -> RequestFeatures:
    tokens = feats.get("prompt_tokens")
    if not isinstance(tokens, int) or tokens < 0:
        raise ValueError("`features.prompt_tokens` must be a whole number ≥ 0")
    task, confidence, complexity = obj.get("task"), obj.get("confidence"), obj.get("complexity")
    for name, value in (("confidence", confidence), ("complexity", complexity)):
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            raise ValueError(f"`{name}` must be a number from 0 to 1")
    return RequestFeatures(
        alias=model,
        tenant=common["tenant"],
        headers=common["headers"],
        prompt_tokens=tokens,
        has_tools=bool(feats.get("has_tools")),
        has_images=bool(feats.get("has_images")),
        stream=bool(feats.get("stream")),
        task=task if isinstance(task, str) else None,
        task_confidence=float(confidence) if confidence is not None and task is not None else None,
        complexity=float(complexity) if complexity is not None else None,
    )
