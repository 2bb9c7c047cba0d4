"""The ``classifier`` blocks of a policy's files, merged: each setting (``enabled``, ``min_confidence``,
``low_confidence_route``) may be set in one file only, while a custom task may take examples from every
file, so a tenant's file adds examples to a task the main file defines. A task's ``description`` and
``min_similarity`` are set in one file at most; its examples, from all files in file-name order, must
number at least three in all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.errors import PolicyIssue
from router.policy.schema import ClassifierSettings, CustomTask

if TYPE_CHECKING:  # merge imports this module
    from router.policy.merge import Where

MIN_EXAMPLES = 3
_ONCE = ("description", "min_similarity")


class ClassifierParts:
    def __init__(self) -> None:
        self.settings: dict[str, tuple[Any, Where]] = {}
        self.tasks: dict[str, list[tuple[CustomTask, Where]]] = {}

    def add(self, at: Where, block: ClassifierSettings, issues: list[PolicyIssue]) -> None:
        """One file's block (``at``: its ``classifier`` key); a setting set twice is an issue at the second."""
        for key in sorted(block.model_fields_set - {"tasks"}):
            if key in self.settings:
                first = self.settings[key][1].doc.file
                issues.append(at.issue((key,), f"`classifier.{key}` is set in more than one file (also in {first})"))
            else:
                self.settings[key] = (getattr(block, key), at)
        for name, task in block.tasks.items():
            parts = self.tasks.setdefault(name, [])
            for key in _ONCE:
                prev = next((w for t, w in parts if key in t.model_fields_set), None)
                if key in task.model_fields_set and prev is not None:
                    issues.append(
                        at.issue(
                            ("tasks", name, key),
                            f"custom task {name!r}: `{key}` is set in more than one file (also in {prev.doc.file}); "
                            "other files may only add `examples`",
                        )
                    )
            parts.append((task, at))

    @property
    def present(self) -> bool:
        return bool(self.settings or self.tasks)

    def where(self, key: str) -> Where | None:
        found = self.settings.get(key)
        return found[1] if found is not None else None

    def task_where(self, name: str) -> Where:
        """Where a task was first defined."""
        return self.tasks[name][0][1]

    def build(self, issues: list[PolicyIssue]) -> ClassifierSettings:
        tasks = {}
        for name, parts in self.tasks.items():
            examples = [e for t, _ in parts for e in t.examples]
            if len(examples) < MIN_EXAMPLES:
                files = ", ".join(dict.fromkeys(w.doc.file for _, w in parts))
                issues.append(
                    self.task_where(name).issue(
                        ("tasks", name, "examples"),
                        f"custom task {name!r} needs at least {MIN_EXAMPLES} examples in all; it has "
                        f"{len(examples)} (in {files})",
                    )
                )
            fields: dict[str, Any] = {"examples": examples}
            for t, _ in parts:
                fields.update({key: getattr(t, key) for key in _ONCE if key in t.model_fields_set})
            tasks[name] = CustomTask.model_construct(**fields)
        values = {k: v for k, (v, _) in self.settings.items()}
        return ClassifierSettings.model_construct(**values, tasks=tasks)
