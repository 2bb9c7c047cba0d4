"""The classify stage of a request: its routing features, plus the classifier's answer or why there is
none. The serving path (:func:`classify_request`, one request through the micro-batching service) and the
offline tools (:class:`router.offline.router.OfflineRouter`, requests in batches) build the same
:class:`Classified`, through :func:`unclassified` and :func:`with_result`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from router.api.chat import ChatRequest, features
from router.classifier.text import PromptView, prompt_view
from router.errors import ClassifierUnavailable
from router.types import RequestFeatures

if TYPE_CHECKING:  # heavy (numpy, scikit-learn); imported only when a policy uses the classifier
    from router.classifier.predict import Classification
    from router.classifier.service import ClassifierRuntime
    from router.policy.compiled import Policy
    from router.telemetry.metrics import Metrics


@dataclass
class Classified:
    """A request's features with the classifier's answer (or why there is none)."""

    features: RequestFeatures
    status: str  # classified | cached | skipped | disabled | failed | timeout
    view: PromptView
    result: Classification | None = None
    error: str | None = None


def unclassified(
    chat: ChatRequest, headers: Mapping[str, str], tenant: str | None, status: str, error: str | None = None
) -> Classified:
    """The request's features with no classification (``status`` says why)."""
    return Classified(features(chat, headers, tenant), status, prompt_view(chat.parsed.messages), error=error)


def with_result(c: Classified, result: Classification, status: str = "classified") -> Classified:
    """``c`` with the classifier's answer in its features, where the policy's rules look."""
    feats = replace(c.features, task=result.task, task_confidence=result.confidence, complexity=result.complexity)
    return Classified(feats, status, c.view, result)


async def classify_request(
    chat: ChatRequest,
    headers: Mapping[str, str],
    tenant: str | None,
    policy: Policy,
    service: ClassifierRuntime | None,
    service_error: str | None,
    metrics: Metrics,
    force: bool = False,
) -> Classified:
    """Features plus classification, on the serving path. ``force``: classify even if no rule would look
    (explain). A classifier that is down or slow costs the request its classification, never its answer:
    the rules run without it."""
    if not policy.classifier.enabled or not (force or policy.needs_classifier):
        return unclassified(chat, headers, tenant, "skipped")
    if service is None:
        if service_error is not None:
            metrics.classifier_errors.labels("unavailable").inc()
            return unclassified(chat, headers, tenant, "failed", service_error)
        return unclassified(chat, headers, tenant, "disabled")
    c = unclassified(chat, headers, tenant, "pending")
    try:
        result, cached = await service.classify(c.view, policy)
    except ClassifierUnavailable as exc:
        metrics.classifier_errors.labels(exc.reason).inc()
        return replace(c, status="timeout" if exc.reason == "timeout" else "failed", error=exc.message)
    metrics.classifications.labels(result.task, result.source).inc()
    return with_result(c, result, "cached" if cached else "classified")
