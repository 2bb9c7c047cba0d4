"""The router's decision without a server: classify and route requests in batches, synchronously.

Used by ``router classify``, ``router explain`` and ``router policy test``; the same features, heads,
centroids and engine as the serving path, so an offline answer is the answer the proxy would give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from router.chat import ChatRequest, features
from router.classifier.predict import ClassifierModel, CustomTasks, classify
from router.classifier.text import prompt_view
from router.explain import Classified, document
from router.policy.compile import Policy
from router.policy.engine import decide, explain
from router.types import Decision

BATCH = 64


class OfflineRouter:
    def __init__(self, policy: Policy, model: ClassifierModel | None, tenant_header: str = "x-router-tenant") -> None:
        self.policy = policy
        self.model = model
        self.tenant_header = tenant_header
        self._custom: CustomTasks | None = None

    def custom(self) -> CustomTasks:
        if self._custom is None:
            assert self.model is not None
            tasks = self.policy.classifier.tasks
            self._custom = CustomTasks.build(
                {n: (t.examples, t.min_similarity) for n, t in tasks.items()}, self.model.encode
            )
        return self._custom

    def classify(self, chats: Sequence[ChatRequest], headers: Sequence[Mapping[str, str]]) -> list[Classified]:
        out: list[Classified] = []
        for start in range(0, len(chats), BATCH):
            out += self._batch(chats[start : start + BATCH], headers[start : start + BATCH])
        return out

    def _batch(self, chats: Sequence[ChatRequest], headers: Sequence[Mapping[str, str]]) -> list[Classified]:
        feats = [features(c, h, h.get(self.tenant_header)) for c, h in zip(chats, headers, strict=True)]
        views = [prompt_view(c.parsed.messages) for c in chats]
        if self.model is None or not self.policy.classifier.enabled:
            return [Classified(f, "disabled", v) for f, v in zip(feats, views, strict=True)]
        vectors = self.model.encode([v.embed_text for v in views]) if views else np.zeros((0, 384), np.float32)
        results = classify(self.model.heads, vectors, views, self.custom())
        return [
            Classified(
                replace(f, task=r.task, task_confidence=r.confidence, complexity=r.complexity), "classified", v, r
            )
            for f, v, r in zip(feats, views, results, strict=True)
        ]

    def decide(self, classified: Classified) -> Decision:
        return decide(self.policy, classified.features)

    def explain(self, chat: ChatRequest, headers: Mapping[str, str]) -> dict[str, object]:
        c = self.classify([chat], [headers])[0]
        return document(self.policy, c, explain(self.policy, c.features))
