"""The classify stage on the serving path: a classifier that is off, failed, slow or answering, and what
each leaves for the rules (a failure costs the classification, never the answer)."""

from __future__ import annotations

import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.classifier.predict import Classification
from router.classifier.service import ClassifierRuntime
from router.classifier.stage import Classified, classify_request, unclassified, with_result
from router.classifier.text import PromptView
from router.errors import ClassifierUnavailable
from router.policy.compile import compile_texts
from router.policy.compiled import Policy
from router.telemetry.metrics import Metrics

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, model: m, endpoints: ["http://10.0.0.1/v1"]}
models:
  auto: {default_route: small}
routes:
  - {name: small, cluster: pool, match: {tasks: [summarization]}}
"""


class FakeService:
    """Stands in for the micro-batching service: answers, or raises what it raises."""

    def __init__(self, answer: Classification | ClassifierUnavailable) -> None:
        self.answer = answer

    async def classify(self, view: PromptView, policy: Policy) -> tuple[Classification, bool]:
        if isinstance(self.answer, ClassifierUnavailable):
            raise self.answer
        return self.answer, True


RESULT = Classification("summarization", 0.9, 0.2, (("summarization", 0.9),), "head")


def _chat() -> ChatRequest:
    return parse_chat_request(
        orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "Summarise this text."}]})
    )


async def _run(service: object, error: str | None = None, policy_text: str = POLICY) -> tuple[Classified, Metrics]:
    policy, metrics = compile_texts([("p.yaml", policy_text)], env={}), Metrics()
    svc: ClassifierRuntime | None = service  # type: ignore[assignment]
    return await classify_request(_chat(), {}, "t", policy, svc, error, metrics), metrics


async def test_an_answer_reaches_the_features_the_rules_read() -> None:
    c, metrics = await _run(FakeService(RESULT))
    assert c.status == "cached"
    assert (c.features.task, c.features.task_confidence, c.features.complexity) == ("summarization", 0.9, 0.2)
    assert c.features.tenant == "t"
    assert (
        metrics.registry.get_sample_value("router_classifications_total", {"task": "summarization", "source": "head"})
        == 1
    )


async def test_a_slow_or_failed_classifier_leaves_the_request_unclassified_with_why() -> None:
    slow, metrics = await _run(FakeService(ClassifierUnavailable("took too long", reason="timeout")))
    assert (slow.status, slow.features.task, slow.error) == ("timeout", None, "took too long")
    failed, _ = await _run(None, error="model file missing")
    assert (failed.status, failed.error) == ("failed", "model file missing")
    assert metrics.registry.get_sample_value("router_classifier_errors_total", {"reason": "timeout"}) == 1


async def test_no_classifier_work_when_no_rule_looks() -> None:
    text = POLICY.replace("match: {tasks: [summarization]}", "match: {models: [auto]}")
    c, _ = await _run(FakeService(RESULT), policy_text=text)
    assert (c.status, c.features.task) == ("skipped", None)
    off, _ = await _run(None)
    assert off.status == "disabled"


def test_with_result_keeps_the_view_and_the_request_features() -> None:
    base = unclassified(_chat(), {"x-a": "1"}, "t", "pending")
    c = with_result(base, RESULT)
    assert c.view is base.view
    assert c.features.headers == base.features.headers
    assert c.result is RESULT
