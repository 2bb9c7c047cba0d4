"""Golden policy tests: cases kept beside the policies (``*.test.yaml``), run by ``router policy test`` and pytest.

A case names a request (``messages``, or ``prompt`` as a one-user-message shorthand; optional ``model``
alias and ``headers``) and what the policy must decide for it: ``route``, ``cluster`` and optionally
``task`` and ``adapter``. A failing case prints a diff of expected and actual, with the decision's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import InvalidRequest, PolicyError, PolicyIssue, RouterError
from router.offline.router import OfflineRouter
from router.policy.yamlsrc import dotted, parse_yaml

TEST_SUFFIXES = (".test.yaml", ".test.yml")


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    route: str
    cluster: str
    task: str | None = None
    adapter: str | None = None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    model: str = "auto"
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    expect: Expect

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("set exactly one of `prompt` or `messages`")
        return self

    def chat(self) -> ChatRequest:
        messages = self.messages if self.messages is not None else [{"role": "user", "content": self.prompt}]
        return parse_chat_request(orjson.dumps({"model": self.model, "messages": messages}))


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class Located:
    file: str
    line: int | None
    case: Case


@dataclass(frozen=True)
class Outcome:
    where: Located
    ok: bool
    diff: tuple[str, ...]


def golden_files(path: str | Path) -> list[Path]:
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if p.is_file() and p.name.endswith(TEST_SUFFIXES):
        return [p]
    return sorted(f for f in folder.iterdir() if f.name.endswith(TEST_SUFFIXES))


def load_cases(files: Sequence[Path]) -> list[Located]:
    """Every case, located by file and line; any invalid file raises PolicyError with file and line."""
    out: list[Located] = []
    issues: list[PolicyIssue] = []
    for f in files:
        doc = parse_yaml(f.read_text(encoding="utf-8"), str(f), {})
        issues += doc.issues
        if doc.data is None:
            continue
        try:
            parsed = CaseFile.model_validate(doc.data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                issues.append(
                    PolicyIssue(str(f), doc.line_of(loc), dotted(loc), err["msg"].removeprefix("Value error, "))
                )
            continue
        for i, case in enumerate(parsed.cases):
            try:
                case.chat()
            except InvalidRequest as exc:
                issues.append(PolicyIssue(str(f), doc.line_of(("cases", i)), f"cases[{i}]", exc.message))
            out.append(Located(str(f), doc.line_of(("cases", i)), case))
    if issues:
        raise PolicyError(issues)
    return out


def run_cases(router: OfflineRouter, cases: Sequence[Located]) -> list[Outcome]:
    chats = [c.case.chat() for c in cases]
    classified = router.classify(chats, [c.case.headers for c in cases])
    out = []
    for where, c in zip(cases, classified, strict=True):
        exp = where.case.expect
        try:
            d = router.decide(c)
        except RouterError as exc:
            out.append(Outcome(where, False, (f"error: {exc.message}",)))
            continue
        actual = {"route": d.route, "cluster": d.primary.cluster, "task": c.features.task, "adapter": d.primary.adapter}
        wanted = {k: v for k, v in exp.model_dump().items() if v is not None or k in ("route", "cluster")}
        diff = tuple(
            f"{key}: expected {want!r}, got {actual[key]!r}" for key, want in wanted.items() if actual[key] != want
        )
        if diff:
            conf = f" ({c.features.task_confidence:.2f})" if c.features.task_confidence is not None else ""
            diff += (
                f"task: {c.features.task}{conf}, complexity: {c.features.complexity}",
                f"reason: {d.reason}",
            )
        out.append(Outcome(where, not diff, diff))
    return out


def render(outcomes: Sequence[Outcome]) -> str:
    lines = []
    for o in outcomes:
        at = f"{o.where.file}:{o.where.line}" if o.where.line else o.where.file
        lines.append(f"{'PASS' if o.ok else 'FAIL'}  {o.where.case.name}  ({at})")
        lines += [f"      {d}" for d in o.diff]
    failed = sum(not o.ok for o in outcomes)
    lines.append(f"{len(outcomes) - failed} passed, {failed} failed")
    return "\n".join(lines)


__all__ = ["Case", "Expect", "golden_files", "load_cases", "render", "run_cases"]
