"""The router's decision without a server: classify and route requests in batches, synchronously.

Used by ``router classify``, ``router explain`` and ``router policy test``; the same features, heads,
centroids and engine as the serving path, so an offline answer is the answer the proxy would give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from router.api.chat import ChatRequest
from router.classifier.predict import ClassifierModel, CustomTasks, classify
from router.classifier.stage import Classified, unclassified, with_result
from router.offline.explain import document
from router.policy.compile import Policy
from router.policy.engine import decide, explain
from router.types import Decision

BATCH = 64


class OfflineRouter:
    def __init__(
        self,
        policy: Policy,
        model: ClassifierModel | None,
        tenant_header: str = "x-router-tenant",
        vectors: dict[str, np.ndarray] | None = None,
    ) -> None:
        """``vectors``: embeddings by text, shared by routers that see the same requests (``policy diff``
        encodes each prompt once for both policies)."""
        self.policy = policy
        self.model = model
        self.tenant_header = tenant_header
        self.vectors = vectors
        self._custom: CustomTasks | None = None

    def custom(self) -> CustomTasks:
        if self._custom is None:
            assert self.model is not None
            tasks = self.policy.classifier.tasks
            self._custom = CustomTasks.build(
                {n: (t.examples, t.min_similarity) for n, t in tasks.items()}, self.model.encode
            )
        return self._custom

    def classify(
        self,
        chats: Sequence[ChatRequest],
        headers: Sequence[Mapping[str, str]],
        tenants: Sequence[str | None] | None = None,
    ) -> list[Classified]:
        """Each request classified; its tenant from ``tenants`` when given, else its tenant header."""
        who = list(tenants) if tenants is not None else [h.get(self.tenant_header) for h in headers]
        out: list[Classified] = []
        for start in range(0, len(chats), BATCH):
            end = start + BATCH
            out += self._batch(chats[start:end], headers[start:end], who[start:end])
        return out

    def _batch(
        self, chats: Sequence[ChatRequest], headers: Sequence[Mapping[str, str]], tenants: Sequence[str | None]
    ) -> list[Classified]:
        enabled = self.model is not None and self.policy.classifier.enabled
        status = "pending" if enabled else "disabled"
        out = [unclassified(c, h, t, status) for c, h, t in zip(chats, headers, tenants, strict=True)]
        if self.model is None or not enabled:
            return out
        views = [c.view for c in out]
        vectors = self._encode([v.embed_text for v in views])
        results = classify(self.model.heads, vectors, views, self.custom())
        return [with_result(c, r) for c, r in zip(out, results, strict=True)]

    def _encode(self, texts: list[str]) -> np.ndarray:
        assert self.model is not None
        if not texts:
            return np.zeros((0, 384), np.float32)
        if self.vectors is None:
            return self.model.encode(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self.model.encode(missing), strict=True))
        return np.stack([self.vectors[t] for t in texts])

    def decide(self, classified: Classified) -> Decision:
        return decide(self.policy, classified.features)

    def explain(self, chat: ChatRequest, headers: Mapping[str, str]) -> dict[str, object]:
        c = self.classify([chat], [headers])[0]
        return document(self.policy, c, explain(self.policy, c.features))
