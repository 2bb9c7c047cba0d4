"""``router eval --policies``: the evaluation rows routed by a whole policy, for the complexity rule's
threshold table (:mod:`router.offline.thresholds`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.classifier.predict import ClassifierModel
from router.classifier.rows import Row
from router.errors import RouterError
from router.offline import thresholds
from router.offline.router import OfflineRouter
from router.policy.compiled import Policy


@dataclass(frozen=True)
class PolicyTable:
    policy: Policy
    label: str  # where the policy was read from
    rule: str | None = None  # the complexity rule (None: the policy's only one)
    model: str = "auto"  # the alias the rows are sent to

    def render(
        self, data: Sequence[Path], rows: Sequence[Row], model: ClassifierModel, vectors: dict[str, np.ndarray]
    ) -> str:
        if self.model not in self.policy.defaults:
            raise ValueError(f"{self.label}: {self.model!r} is not a rule-routed model alias of this policy")
        rule = thresholds.complexity_rule(self.policy, self.rule)
        chats = _chats(data, rows, self.model)
        router = OfflineRouter(self.policy, model, vectors=vectors)
        kept = [c for c in chats if c is not None]
        features = [c.features for c in router.classify(kept, [{} for _ in kept])]
        text = thresholds.render(thresholds.curve(self.policy, rule, features), self.label)
        skipped = len(chats) - len(kept)
        return text + (f"\n  ({skipped} rows are not valid chat requests and were left out)" if skipped else "")


def _chats(data: Sequence[Path], rows: Sequence[Row], model: str) -> list[ChatRequest | None]:
    """Each row's request (the same ids as :func:`router.classifier.rows.read_rows` gives)."""
    messages: dict[str, object] = {}
    for path in data:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    obj = json.loads(line)
                    messages[str(obj.get("id", f"{path.name}:{n}"))] = obj.get("messages")
    out: list[ChatRequest | None] = []
    for r in rows:
        try:
            out.append(parse_chat_request(orjson.dumps({"model": model, "messages": messages[r.id]})))
        except RouterError:
            out.append(None)
    return out
