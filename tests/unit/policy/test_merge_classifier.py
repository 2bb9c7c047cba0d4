"""Custom tasks take examples from every file; each classifier setting comes from one file."""

from __future__ import annotations

import pytest

from router.errors import PolicyError
from router.policy.compile import compile_texts

MAIN = """version: 1
clusters:
  pool: {kind: vllm, endpoints: ["http://a/v1"], model: m}
models:
  auto: {default_route: general}
classifier:
  min_confidence: 0.4
  tasks:
    triage:
      description: Support-ticket triage
      min_similarity: 0.7
      examples: ["Triage this ticket", "Which queue is this ticket for?", "Set the ticket's priority"]
routes:
  - {name: triage, match: {tasks: [triage]}, cluster: pool}
  - {name: general, target_only: true, cluster: pool}
"""

TENANT = """version: 1
classifier:
  tasks:
    triage:
      examples: ["Ticket-Triage bitte: Rechnung falsch", "Clasifica este ticket"]
"""


def test_a_tenant_file_adds_examples_to_a_task_defined_elsewhere() -> None:
    policy = compile_texts([("a-main.yaml", MAIN), ("b-tenant.yaml", TENANT)], env={})
    task = policy.classifier.tasks["triage"]
    assert task.examples[-2:] == ["Ticket-Triage bitte: Rechnung falsch", "Clasifica este ticket"]
    assert len(task.examples) == 5
    assert (task.min_similarity, task.description) == (0.7, "Support-ticket triage")
    assert policy.classifier.min_confidence == 0.4


def test_a_setting_made_twice_is_one_error_at_the_second_file() -> None:
    again = TENANT + "  min_confidence: 0.6\n"
    with pytest.raises(PolicyError) as info:
        compile_texts([("a-main.yaml", MAIN), ("b-tenant.yaml", again)], env={})
    (issue,) = info.value.issues
    assert (issue.file, issue.line, issue.path) == ("b-tenant.yaml", 6, "classifier.min_confidence")
    assert issue.message == "`classifier.min_confidence` is set in more than one file (also in a-main.yaml)"


def test_a_task_threshold_set_twice_or_too_few_examples_in_all() -> None:
    threshold = TENANT.replace("    triage:\n", "    triage:\n      min_similarity: 0.5\n")
    with pytest.raises(PolicyError) as info:
        compile_texts([("a-main.yaml", MAIN), ("b-tenant.yaml", threshold)], env={})
    (issue,) = info.value.issues
    assert (issue.file, issue.line, issue.path) == ("b-tenant.yaml", 5, "classifier.tasks.triage.min_similarity")
    assert "other files may only add `examples`" in issue.message
    few = TENANT.replace("triage", "refunds")
    with pytest.raises(PolicyError) as info:
        compile_texts([("a-main.yaml", MAIN), ("b-tenant.yaml", few)], env={})
    (issue,) = info.value.issues
    assert (issue.file, issue.path) == ("b-tenant.yaml", "classifier.tasks.refunds.examples")
    assert issue.message == "custom task 'refunds' needs at least 3 examples in all; it has 2 (in b-tenant.yaml)"
