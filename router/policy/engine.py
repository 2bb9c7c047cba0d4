"""The pure decision: (policy, request features) -> route, ordered targets, reason.

No I/O, no clock, no randomness: the same inputs always give the same decision. Rules are tried in
priority order (highest first, then file order); the first whose every condition holds wins. When none
does, a low-confidence classification takes the policy's ``classifier.low_confidence_route`` and anything
else its alias's ``default_route``. Every decision carries a one-line reason naming the rule and the
actual values that satisfied it; :func:`explain` gives the same walk with the verdict on every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from router.errors import ModelNotFound
from router.policy.compiled import CompiledRoute, Policy
from router.policy.schema import Match
from router.types import Decision, RequestFeatures


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule as evaluated for one request (explain output)."""

    route: str
    file: str
    line: int | None
    priority: int
    matched: bool
    why: str  # the failing condition, or the satisfied ones with their values


@dataclass(frozen=True, slots=True)
class Trace:
    decision: Decision
    rules: tuple[RuleVerdict, ...]
    low_confidence: bool


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def evaluate(rule: CompiledRoute, f: RequestFeatures, min_confidence: float) -> tuple[bool, str]:
    """Whether ``rule`` matches ``f``, and why: the first failing condition, or every condition that held.
    The conditions are checked in the order of the policy reference: the request's own fields, then the
    classifier's answer, then the text."""
    held: list[str] = []
    failed = _holds(rule.route.match, f, min_confidence, held)
    if failed is not None:
        return False, failed
    return True, ", ".join(held) or "matches everything"


def _holds(m: Match, f: RequestFeatures, min_confidence: float, held: list[str]) -> str | None:
    """None when every condition of the block ``m`` holds (each appended to ``held``), else the first that
    failed. Nested blocks come last: ``all`` (each must hold), ``any`` (one must), ``not`` (must not)."""
    return (
        _request_fields(m, f, held)
        or _classification(m, f, min_confidence, held)
        or _text(m, f, held)
        or _blocks(m, f, min_confidence, held)
    )


def _blocks(m: Match, f: RequestFeatures, min_confidence: float, held: list[str]) -> str | None:
    for i, sub in enumerate(m.all_ or ()):
        inner: list[str] = []
        failed = _holds(sub, f, min_confidence, inner)
        if failed is not None:
            return f"all[{i}]: {failed}"
        held.append(f"all[{i}]: {', '.join(inner) or 'matches everything'}")
    if m.any_ is not None:
        missed = []
        for i, sub in enumerate(m.any_):
            inner = []
            failed = _holds(sub, f, min_confidence, inner)
            if failed is None:
                held.append(f"any[{i}]: {', '.join(inner) or 'matches everything'}")
                break
            missed.append(f"[{i}] {failed}")
        else:
            return "none of any: " + "; ".join(missed)
    if m.not_ is not None:
        inner = []
        failed = _holds(m.not_, f, min_confidence, inner)
        if failed is None:
            return f"not: {', '.join(inner) or 'matches everything'}"
        held.append(f"not ({failed})")
    return None


def _request_fields(m: Match, f: RequestFeatures, held: list[str]) -> str | None:
    if m.models is not None:
        if f.alias not in m.models:
            return f"model {f.alias!r} not in {m.models}"
        held.append(f"model {f.alias!r}")
    if m.tenants is not None:
        if f.tenant not in m.tenants:
            return f"tenant {f.tenant!r} not in {m.tenants}"
        held.append(f"tenant {f.tenant!r}")
    if m.headers is not None:
        for name, expected in m.headers.items():
            got = f.headers.get(name)
            if got is None:
                return f"header {name!r} absent"
            if expected != "*" and got != expected:
                return f"header {name!r} is {got!r}, not {expected!r}"
            held.append(f"header {name}={got!r}")
    if m.min_prompt_tokens is not None:
        if f.prompt_tokens < m.min_prompt_tokens:
            return f"prompt tokens {f.prompt_tokens} < {m.min_prompt_tokens}"
        held.append(f"prompt tokens {f.prompt_tokens} ≥ {m.min_prompt_tokens}")
    if m.max_prompt_tokens is not None:
        if f.prompt_tokens > m.max_prompt_tokens:
            return f"prompt tokens {f.prompt_tokens} > {m.max_prompt_tokens}"
        held.append(f"prompt tokens {f.prompt_tokens} ≤ {m.max_prompt_tokens}")
    for flag, value, want in (
        ("has_tools", f.has_tools, m.has_tools),
        ("has_images", f.has_images, m.has_images),
        ("stream", f.stream, m.stream),
    ):
        if want is not None:
            if value != want:
                return f"{flag} is {value}"
            held.append(f"{flag} {value}")
    return None


def _classification(m: Match, f: RequestFeatures, min_confidence: float, held: list[str]) -> str | None:
    if m.tasks is not None:
        if f.task is None or f.task_confidence is None:
            return "request not classified"
        if f.task not in m.tasks:
            return f"task {f.task} not in {m.tasks}"
        need = m.min_task_confidence if m.min_task_confidence is not None else min_confidence
        if f.task_confidence < need:
            return f"task {f.task} confidence {_fmt(f.task_confidence)} < {_fmt(need)}"
        held.append(f"task {f.task} ({_fmt(f.task_confidence)} ≥ {_fmt(need)})")
    if m.max_task_confidence is not None:
        if f.task_confidence is None:
            return "request not classified"
        if f.task_confidence > m.max_task_confidence:
            return f"task confidence {_fmt(f.task_confidence)} > {_fmt(m.max_task_confidence)}"
        held.append(f"task confidence {_fmt(f.task_confidence)} ≤ {_fmt(m.max_task_confidence)}")
    if m.min_complexity is not None or m.max_complexity is not None:
        if f.complexity is None:
            return "request not classified"
        if m.min_complexity is not None:
            if f.complexity < m.min_complexity:
                return f"complexity {_fmt(f.complexity)} < {_fmt(m.min_complexity)}"
            held.append(f"complexity {_fmt(f.complexity)} ≥ {_fmt(m.min_complexity)}")
        if m.max_complexity is not None:
            if f.complexity > m.max_complexity:
                return f"complexity {_fmt(f.complexity)} > {_fmt(m.max_complexity)}"
            held.append(f"complexity {_fmt(f.complexity)} ≤ {_fmt(m.max_complexity)}")
    return None


def _text(m: Match, f: RequestFeatures, held: list[str]) -> str | None:
    regex, keywords = m.regex_pattern, m.keyword_pattern
    if regex is not None:
        hit = regex.search(f.last_user_message)
        if hit is None:
            return f"regex {regex.pattern!r} not found"
        held.append(f"regex found {hit.group(0)[:40]!r}")
    if keywords is not None:
        hit = keywords.search(f.last_user_message)
        if hit is None:
            return "no keyword found"
        held.append(f"keyword {hit.group(0)!r}")
    return None


def _low_confidence(policy: Policy, f: RequestFeatures) -> bool:
    c = f.task_confidence
    return c is not None and c < policy.classifier.min_confidence


def _walk(policy: Policy, f: RequestFeatures, verdicts: list[RuleVerdict] | None) -> Decision:
    pinned = policy.pinned.get(f.alias)
    if pinned is not None:
        return pinned
    default = policy.defaults.get(f.alias)
    if default is None:
        raise ModelNotFound(
            f"The model `{f.alias}` does not exist. Available: {', '.join(sorted(policy.models))}.",
            param="model",
        )
    min_confidence = policy.classifier.min_confidence
    chosen: Decision | None = None
    for rule in policy.routes:
        if chosen is not None:
            if verdicts is None:
                break
            verdicts.append(
                RuleVerdict(rule.route.name, rule.file, rule.line, rule.route.priority, False, "not reached")
            )
            continue
        matched, why = evaluate(rule, f, min_confidence)
        if verdicts is not None:
            verdicts.append(RuleVerdict(rule.route.name, rule.file, rule.line, rule.route.priority, matched, why))
        if matched:
            note = f" ({rule.route.description})" if rule.route.description else ""
            chosen = replace(rule.decision, reason=f"rule {rule.route.name!r}: {why}{note}", rule=rule.route.name)
    if chosen is not None:
        return chosen
    if _low_confidence(policy, f) and policy.low_confidence is not None:
        return replace(
            policy.low_confidence,
            reason=f"no rule matched; task {f.task} confidence {_fmt(f.task_confidence or 0.0)} < "
            f"{_fmt(min_confidence)}: low-confidence route",
        )
    if f.task is not None:
        return replace(
            default,
            reason=f"no rule matched (task {f.task} {_fmt(f.task_confidence or 0.0)}, complexity "
            f"{_fmt(f.complexity or 0.0)}); default route of alias {f.alias!r}",
        )
    return default


def decide(policy: Policy, f: RequestFeatures) -> Decision:
    """Pinned aliases answer at once; routed aliases take the first matching rule, else their default."""
    return _walk(policy, f, None)


def explain(policy: Policy, f: RequestFeatures) -> Trace:
    """The same decision as :func:`decide`, with the verdict on every rule (rules after the match: not reached)."""
    verdicts: list[RuleVerdict] = []
    decision = _walk(policy, f, verdicts)
    return Trace(decision, tuple(verdicts), _low_confidence(policy, f) and not decision.pinned)
