"""The decision trace as a document: everything for operators, and a tenant's view that shows where the
request goes but nothing of the policy itself."""

from __future__ import annotations

import orjson

from router.api.chat import parse_chat_request
from router.classifier.stage import unclassified
from router.offline.explain import document, tenant_view
from router.policy.compile import compile_texts
from router.policy.engine import explain

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, model: m, endpoints: ["http://10.0.0.1/v1"]}
  big: {kind: frontier, model: openai/gpt-4o}
models:
  auto: {default_route: cheap}
routes:
  - {name: vip, cluster: big, match: {headers: {x-team: secret-team}}, description: "VIP of ${TEAM}"}
  - {name: cheap, cluster: pool, fallbacks: [big], match: {models: [auto]}}
"""


def test_the_operator_document_and_the_tenant_view() -> None:
    policy = compile_texts([("p.yaml", POLICY)], env={"TEAM": "acme"})
    chat = parse_chat_request(orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
    c = unclassified(chat, {"x-team": "other"}, "t", "skipped")
    doc = document(policy, c, explain(policy, c.features))
    assert doc["object"] == "route.explanation"
    assert doc["decision"]["route"] == "cheap"
    assert [f["cluster"] for f in doc["decision"]["fallbacks"]] == ["big"]
    assert [r["route"] for r in doc["rules"]] == ["vip", "cheap"]
    assert "secret-team" in orjson.dumps(doc).decode()  # operators see the rule that did not match and why
    view = tenant_view(doc)
    assert view["view"] == "tenant"
    assert view["decision"] == {k: doc["decision"][k] for k in ("route", "cluster", "adapter", "fallbacks")}
    shown = orjson.dumps(view).decode()
    assert "secret-team" not in shown
    assert "acme" not in shown
    assert "p.yaml" not in shown


def test_a_custom_task_is_shown_with_the_similarity_it_needs() -> None:
    from router.classifier.predict import Classification
    from router.classifier.stage import with_result

    text = (
        POLICY
        + """
classifier:
  tasks:
    triage:
      examples: ["Triage this ticket", "Set the ticket's queue", "Which queue for this ticket?"]
      min_similarity: 0.7
"""
    )
    policy = compile_texts([("p.yaml", text)], env={"TEAM": "acme"})
    chat = parse_chat_request(orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
    result = Classification("open_qa", 0.8, 0.2, (("open_qa", 0.8), ("triage", 0.65)), "head")
    c = with_result(unclassified(chat, {}, "t", "pending"), result)
    doc = document(policy, c, explain(policy, c.features))
    assert doc["classifier"]["custom_tasks"] == [
        {"task": "triage", "similarity": 0.65, "min_similarity": 0.7, "taken": False}
    ]
