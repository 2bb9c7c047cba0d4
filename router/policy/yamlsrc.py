"""YAML with locations: every key path maps to its line, duplicate keys are errors, ``${VAR}`` expands.

PyYAML's plain ``safe_load`` forgets where things were and silently keeps the last of two duplicate
keys; policy authors need both, so this walks the composed node tree itself.

Aliases (``*name``) are refused: a 300-byte file of nested aliases expands to hundreds of megabytes
("billion laughs"), and a self-referencing one (``x: &a [*a]``) never ends. Nesting is bounded too.
Values that came from ``${VAR}`` are never echoed back in an error message (they may be secrets).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from router.errors import PolicyIssue

KeyPath = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class SourceDoc:
    """One parsed file: its data, the line of every key path, and the problems found while reading."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    issues: list[PolicyIssue] = field(default_factory=list)
    # Expanded ``${VAR}`` values and the text they replaced, so messages can show the latter.
    expanded: dict[str, str] = field(default_factory=dict)

    def redact(self, message: str) -> str:
        """``message`` with every expanded environment value put back as the ``${VAR}`` it came from."""
        for value, raw in sorted(self.expanded.items(), key=lambda kv: -len(kv[0])):
            if value in message:
                message = message.replace(value, raw)
        return message

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the longest known prefix of ``path`` (pydantic locations may go deeper than YAML)."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses aliases and nesting deeper than ``MAX_DEPTH``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it untyped
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in policy files: write the value out", mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it untyped
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> SourceDoc:
    env = os.environ if env is None else env
    doc = SourceDoc(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        doc.issues.append(PolicyIssue(file, line, "", f"YAML syntax: {exc.problem or exc}"))
        return doc
    except yaml.YAMLError as exc:
        doc.issues.append(PolicyIssue(file, None, "", f"YAML: {exc}"))
        return doc
    if node is None:
        doc.issues.append(PolicyIssue(file, 1, "", "the file is empty"))
        return doc
    walker = _Walker(doc, env)
    doc.data = walker.build(node, ())
    return doc


class _Walker:
    def __init__(self, doc: SourceDoc, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.doc.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    key = str(key)
                sub = (*path, key)
                if key in out:
                    first = self.doc.lines.get(sub)
                    self.doc.issues.append(
                        PolicyIssue(
                            self.doc.file,
                            key_node.start_mark.line + 1,
                            dotted(sub),
                            f"duplicate key {key!r} (first defined on line {first})",
                        )
                    )
                    continue
                self.doc.lines[sub] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str) and "${" in value:
            expanded = self._expand(value, path, node.start_mark.line + 1)
            if getattr(node, "style", None) is None:  # unquoted: typed as if the value were written there
                return _plain_scalar(expanded)
            return expanded
        return value

    def _expand(self, value: str, path: KeyPath, line: int) -> str:
        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            got = self.env.get(name)
            if got:
                if len(got) >= 4:  # shorter values are too common to redact without mangling messages
                    self.doc.expanded[got] = match.group(0)
                return got
            if default is not None:
                return default
            self.doc.issues.append(
                PolicyIssue(self.doc.file, line, dotted(path), f"environment variable {name} is not set")
            )
            return ""

        return _ENV.sub(repl, value)


def _plain_scalar(text: str) -> Any:
    """An unquoted expanded value resolved as YAML resolves a plain scalar (``64`` an int, ``true`` a
    flag, anything else the string), so that strict types see what the author meant."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, bool | int | float) else text
