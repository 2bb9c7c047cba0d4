"""Golden policy tests: cases kept beside the policies (``*.test.yaml``), run by ``router policy test`` and pytest.

A case names a request (``messages``, or ``prompt`` as a one-user-message shorthand; optional ``model``
alias and ``headers``) and what the policy must decide for it: ``route``, ``cluster`` and optionally
``task``, ``adapter`` and ``fallbacks`` (the clusters after the first, in order). A failing case prints a
diff of expected and actual, with the decision's reason. A case that is itself wrong (an unknown field, no
prompt) fails on its own, with its file and line; the file's other cases still run.
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
    fallbacks: list[str] | None = None


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
    """The file's shape; each case is validated on its own (a bad one does not hide the others)."""

    model_config = ConfigDict(extra="forbid")
    cases: list[dict[str, Any]] = Field(min_length=1)


@dataclass(frozen=True)
class Located:
    file: str
    line: int | None
    name: str
    case: Case | None  # None: the case itself is invalid (``problems`` say why)
    problems: tuple[str, ...] = ()


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
        for i, raw in enumerate(parsed.cases):
            out.append(_case(str(f), doc.line_of(("cases", i)), i, raw, doc))
    if issues:
        raise PolicyError(issues)
    return out


def _case(file: str, line: int | None, i: int, raw: dict[str, Any], doc: Any) -> Located:
    name = str(raw.get("name") or f"cases[{i}]")
    try:
        case = Case.model_validate(raw)
        case.chat()
    except ValidationError as exc:
        problems = tuple(
            f"invalid case: {dotted(('cases', i, *err['loc']))} (line {doc.line_of(('cases', i, *err['loc']))}): "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        return Located(file, line, name, None, problems)
    except InvalidRequest as exc:
        return Located(file, line, name, None, (f"invalid case: {exc.message}",))
    return Located(file, line, name, case)


def run_cases(router: OfflineRouter, cases: Sequence[Located]) -> list[Outcome]:
    valid = [c for c in cases if c.case is not None]
    chats = [c.case.chat() for c in valid if c.case is not None]
    classified = dict(
        zip((id(c) for c in valid), router.classify(chats, [c.case.headers for c in valid if c.case]), strict=True)
    )
    out = []
    for where in cases:
        if where.case is None:
            out.append(Outcome(where, False, where.problems))
            continue
        c = classified[id(where)]
        exp = where.case.expect
        try:
            d = router.decide(c)
        except RouterError as exc:
            out.append(Outcome(where, False, (f"error: {exc.message}",)))
            continue
        actual = {
            "route": d.route,
            "cluster": d.primary.cluster,
            "task": c.features.task,
            "adapter": d.primary.adapter,
            "fallbacks": [t.cluster for t in d.targets[1:]],
        }
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
        lines.append(f"{'PASS' if o.ok else 'FAIL'}  {o.where.name}  ({at})")
        lines += [f"      {d}" for d in o.diff]
    failed = sum(not o.ok for o in outcomes)
    lines.append(f"{len(outcomes) - failed} passed, {failed} failed")
    return "\n".join(lines)


__all__ = ["Case", "Expect", "golden_files", "load_cases", "render", "run_cases"]
