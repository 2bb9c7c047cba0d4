"""Load policy files, validate each against the schema, then merge, check and compile them.

::

    policy_files -> read (size limit) -> parse_yaml (router.policy.yamlsrc: lines, no aliases, ${VAR})
      -> PolicyFile.model_validate (router.policy.schema) -> Merged (router.policy.merge)
      -> Merged.check (router.policy.checks) -> Merged.build -> Policy (router.policy.compiled)

All or nothing: :func:`load_policy` returns a :class:`Policy` only if every file is valid, otherwise it
raises :class:`~router.errors.PolicyError` carrying every issue with file, line and key path.
"""

from __future__ import annotations

__all__ = ["CompiledRoute", "Policy", "compile_texts", "keyword_pattern", "load_policy", "policy_files"]

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from router.errors import PolicyError, PolicyIssue
from router.policy.checks import check
from router.policy.compiled import CompiledRoute, Policy
from router.policy.merge import Merged
from router.policy.messages import did_you_mean, in_policy_words, keys_at
from router.policy.schema import (
    PolicyFile,
)
from router.policy.schema_match import keyword_pattern
from router.policy.yamlsrc import KeyPath, SourceDoc, dotted, parse_yaml

_T = TypeVar("_T")

POLICY_SUFFIXES = (".yaml", ".yml")
# A policy file larger than this is refused unread (real ones are tens of kilobytes; a multi-megabyte one
# is a mistake or an attack, and would cost seconds of CPU to parse).
MAX_FILE_BYTES = 2 * 1024 * 1024
# Keys an earlier version of the format had, with where they went.
RENAMED = {"max_concurrency": "`max_concurrency` is now `circuit_breaker.max_in_flight`"}


def policy_files(path: str | Path) -> list[Path]:
    """The policy files at ``path``: the file itself, or the YAML files of a directory (not recursive).

    Files ending in ``.test.yaml`` are golden tests, not policy.
    """
    p = Path(path)
    if p.is_dir():
        return sorted(
            f for f in p.iterdir() if f.suffix in POLICY_SUFFIXES and not f.name.endswith((".test.yaml", ".test.yml"))
        )
    return [p]


def load_policy(path: str | Path, env: Mapping[str, str] | None = None) -> Policy:
    files = policy_files(path)
    if not files:
        raise PolicyError([PolicyIssue(str(path), None, "", "no policy files (*.yaml) found")])
    texts: list[tuple[str, str]] = []
    issues: list[PolicyIssue] = []
    for f in files:
        try:
            size = f.stat().st_size
            if size > MAX_FILE_BYTES:
                issues.append(PolicyIssue(str(f), None, "", f"the file is {size} bytes; the limit is {MAX_FILE_BYTES}"))
                continue
            texts.append((str(f), f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(PolicyIssue(str(f), None, "", f"cannot read: {exc}"))
    if issues:
        raise PolicyError(issues)
    return compile_texts(texts, env)


def compile_texts(texts: Sequence[tuple[str, str]], env: Mapping[str, str] | None = None) -> Policy:
    """Validate and merge ``(file name, YAML text)`` pairs."""
    env = os.environ if env is None else env
    docs: list[tuple[SourceDoc, PolicyFile]] = []
    issues: list[PolicyIssue] = []
    for name, text in texts:
        doc = parse_yaml(text, name, env)
        issues.extend(doc.issues)
        if doc.data is None:
            continue
        try:
            docs.append((doc, PolicyFile.model_validate(doc.data)))
        except ValidationError as exc:
            # An unset ${VAR} is reported once, not again as the empty value it left behind.
            env_paths = [i.path for i in doc.issues]
            issues.extend(i for i in _validation_issues(doc, exc) if not any(p.startswith(i.path) for p in env_paths))
    if issues:
        raise PolicyError(issues)
    merged = Merged.of(docs)
    check(merged)
    if merged.issues:
        raise PolicyError(merged.issues)
    return replace(merged.build(tuple(n for n, _ in texts)), digest=digest(texts))


def digest(texts: Sequence[tuple[str, str]]) -> str:
    """The policy's identity: a hash of its files' names (without their directory) and contents, so every
    replica serving the same files reports the same one (``/readyz``, ``x-router-policy``, metrics)."""
    h = hashlib.sha256()
    for name, text in sorted((Path(n).name, t) for n, t in texts):
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:12]


def _validation_issues(doc: SourceDoc, exc: ValidationError) -> list[PolicyIssue]:
    out = []
    for err in exc.errors():
        loc: KeyPath = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("vllm", "openai", "frontier")))
        msg = in_policy_words(err)
        if err["type"] == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            unknown = "unknown key (not in the policy schema)" + did_you_mean(key, keys_at(PolicyFile, loc[:-1]))
            msg = RENAMED.get(key, unknown)
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            msg = "`kind` must be `vllm` or `frontier`"
            loc = (*loc, "kind")
        out.append(PolicyIssue(doc.file, doc.line_of(loc), dotted(loc), doc.redact(msg)))
    return out
