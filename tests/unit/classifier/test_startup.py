"""Starting the classifier in a serving process: only when the policy can use it, and a failed load costs
the classification, not the process."""

from __future__ import annotations

import pytest

from router.classifier import startup
from router.classifier.predict import ClassifierModel
from router.classifier.text import prompt_view
from router.upstream.transport.base import Completion, UpstreamCall
from router.upstream.transport.mock import MockTransport
from tests.unit.inproc import POLICY, inproc_state

RULES = (
    POLICY
    + """
routes:
  - {name: short, cluster: pool, match: {tasks: [summarization]}}
"""
)


async def _ok(call: UpstreamCall) -> Completion:
    return Completion(b"{}", None, "m", ())


async def test_a_policy_without_task_rules_never_loads_the_classifier() -> None:
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)})
    await startup.start(state)
    assert (state.classifier, state.classifier_error) == (None, None)


async def test_the_classifier_starts_when_a_rule_reads_it(classifier_model: ClassifierModel) -> None:
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)}, RULES)
    state.classifier_model = classifier_model
    await startup.start(state)
    assert state.classifier is not None
    try:
        view = prompt_view([{"role": "user", "content": "Summarise this article in two sentences."}])
        result, _ = await state.classifier.classify(view, state.serving.policy)
        assert result.task == "summarization"
    finally:
        await state.classifier.stop()


async def test_a_failed_load_leaves_the_process_serving_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from router.classifier import service

    async def broken(*args: object) -> ClassifierModel:
        raise OSError("model file missing")

    monkeypatch.setattr(service, "load_in", broken)
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)}, RULES)
    await startup.start(state)
    assert state.classifier is None
    assert state.classifier_error == "load failed: OSError: model file missing"
    assert state.metrics.registry.get_sample_value("router_classifier_up") == 0


async def test_a_process_told_not_to_classify_does_not() -> None:
    state = inproc_state({"pool": MockTransport(_ok), "api": MockTransport(_ok)}, RULES)
    state.settings = state.settings.model_copy(update={"classifier": False})
    await startup.start(state)
    assert (state.classifier, state.classifier_error) == (None, None)
