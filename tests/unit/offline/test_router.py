"""The decision without a server: the same features and engine as the serving path, classified in
batches; without a model, the rules that need none still route."""

from __future__ import annotations

import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.classifier.predict import ClassifierModel
from router.offline.router import BATCH, OfflineRouter
from router.policy.compile import compile_texts

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, model: m, endpoints: ["http://10.0.0.1/v1"]}
  big: {kind: frontier, model: openai/gpt-4o}
models:
  auto: {default_route: hard}
routes:
  - {name: hard, cluster: big, match: {models: [auto]}}
  - {name: summaries, cluster: pool, priority: 10, match: {tasks: [summarization]}}
"""


def _chat(text: str) -> ChatRequest:
    return parse_chat_request(orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": text}]}))


def test_without_a_model_requests_are_unclassified_and_rules_without_tasks_route() -> None:
    router = OfflineRouter(compile_texts([("p.yaml", POLICY)], env={}), None)
    (c,) = router.classify([_chat("Summarise: the cat sat on the mat.")], [{}])
    assert (c.status, c.features.task) == ("disabled", None)
    assert router.decide(c).route == "hard"


def test_batches_keep_the_order_of_the_requests(classifier_model: ClassifierModel) -> None:
    router = OfflineRouter(compile_texts([("p.yaml", POLICY)], env={}), classifier_model)
    summary = (
        "Summarize the following text in one paragraph:\n\nThe city council met on Tuesday evening to discuss the "
        "new budget for parks, schools and roads. After three hours of debate the members voted to raise "
        "spending on schools by five percent."
    )
    texts = [summary] * 3
    texts += ["Prove that there are infinitely many primes."] * (BATCH + 1)
    out = router.classify([_chat(t) for t in texts], [{"x-router-tenant": f"t{i}"} for i in range(len(texts))])
    assert len(out) == len(texts)
    assert [c.features.tenant for c in out] == [f"t{i}" for i in range(len(texts))]
    assert {router.decide(c).route for c in out[:3]} == {"summaries"}
    assert all(c.status == "classified" for c in out)
