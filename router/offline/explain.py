"""The decision trace of one request as a JSON document: ``POST /v1/route/explain`` and ``router explain``."""

from __future__ import annotations

from typing import Any

from router.classifier.stage import Classified
from router.policy.compile import Policy
from router.policy.engine import Trace


def document(policy: Policy, c: Classified, trace: Trace) -> dict[str, Any]:
    f = c.features
    d = trace.decision
    classifier: dict[str, Any] = {"status": c.status, "embedded_text": c.view.embed_text}
    if c.result is not None:
        r = c.result
        classifier.update(
            task=r.task,
            task_confidence=r.confidence,
            task_source=r.source,
            complexity=r.complexity,
            top=[{"label": label, "score": score} for label, score in r.top],
            min_confidence=policy.classifier.min_confidence,
            low_confidence=trace.low_confidence,
        )
        custom = policy.classifier.tasks
        if custom:
            # A custom task's score is a similarity to its examples: shown beside the threshold it needs.
            classifier["custom_tasks"] = [
                {
                    "task": label,
                    "similarity": score,
                    "min_similarity": custom[label].min_similarity,
                    "taken": r.source == "custom" and r.task == label,
                }
                for label, score in r.top
                if label in custom
            ]
    if c.error is not None:
        classifier["error"] = c.error
    return {
        "object": "route.explanation",
        "model": f.alias,
        "pinned": d.pinned,
        "features": {
            "tenant": f.tenant,
            "prompt_tokens": f.prompt_tokens,
            "has_tools": f.has_tools,
            "has_images": f.has_images,
            "stream": f.stream,
            "last_user_message_chars": len(f.last_user_message),
        },
        "classifier": classifier,
        "rules": [
            {
                "route": v.route,
                "file": v.file,
                "line": v.line,
                "priority": v.priority,
                "matched": v.matched,
                "why": v.why,
            }
            for v in trace.rules
        ],
        "decision": {
            "route": d.route,
            "reason": d.reason,
            "cluster": d.primary.cluster,
            "adapter": d.primary.adapter,
            "fallbacks": [{"cluster": t.cluster, "adapter": t.adapter} for t in d.targets[1:]],
        },
    }


def tenant_view(doc: dict[str, Any]) -> dict[str, Any]:
    """What any caller may see of its own request's decision (``auth.explain: tenants``): how it was
    classified, which rule took it and where it goes. Not the policy itself: no file paths or lines, no
    rule conditions (header values, regexes, thresholds, other tenants' names), no descriptions (which may
    hold expanded variables), no internal errors."""
    c = doc["classifier"]
    classifier = {
        k: c[k] for k in ("status", "task", "task_confidence", "task_source", "complexity", "top", "low_confidence")
        if k in c
    }  # fmt: skip
    d = doc["decision"]
    return {
        "object": "route.explanation",
        "view": "tenant",
        "model": doc["model"],
        "pinned": doc["pinned"],
        "features": doc["features"],
        "classifier": classifier,
        "decision": {k: d[k] for k in ("route", "cluster", "adapter", "fallbacks")},
    }
