"""Lint (pure): a policy that loads but holds things that can never take effect.

- a rule that never matches because a rule evaluated before it matches every request it would (a catch-all
  above it, a broader tenant rule at a higher priority, the same conditions twice);
- a cluster no rule, alias, fallback or budget ever sends a request to;
- a ``target_only`` route nothing names (no alias's default route, not the low-confidence route).

Rules with ``any``/``all``/``not`` blocks are judged soundly: a warning is only given when it is sure.

``router policy lint`` prints them and exits 1 when there are any (for CI); ``router policy check`` prints
them as warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.errors import PolicyIssue
from router.policy.compiled import CompiledRoute, Policy
from router.policy.schema import Match


def _any_of(a: Sequence[str] | None, b: Sequence[str] | None) -> bool:
    """An any-of condition of ``a`` holds wherever ``b``'s does (unset: holds everywhere)."""
    return a is None or (b is not None and set(b) <= set(a))


def _at_least(a: float | None, b: float | None) -> bool:
    return a is None or (b is not None and b >= a)


def _at_most(a: float | None, b: float | None) -> bool:
    return a is None or (b is not None and b <= a)


def covers(a: Match, b: Match, min_confidence: float) -> bool:
    """Whether every request that matches ``b`` also matches ``a`` (``a`` is at least as broad).

    Sound, not complete: ``True`` only when it is sure. ``b``'s own nested blocks only narrow it, so they
    are ignored; ``a``'s ``all`` blocks must each cover ``b``, one of its ``any`` blocks must, and a ``not``
    block is never judged (the answer is then ``False``)."""
    if a.not_ is not None:
        return False
    if a.all_ is not None and not all(covers(sub, b, min_confidence) for sub in a.all_):
        return False
    if a.any_ is not None and not any(covers(sub, b, min_confidence) for sub in a.any_):
        return False
    if not (_any_of(a.models, b.models) and _any_of(a.tenants, b.tenants) and _any_of(a.keywords, b.keywords)):
        return False
    if not _any_of(a.tasks, b.tasks):
        return False
    if a.tasks is not None:  # the task must also be as confident as a's threshold asks
        a_conf = a.min_task_confidence if a.min_task_confidence is not None else min_confidence
        b_conf = b.min_task_confidence if b.min_task_confidence is not None else min_confidence
        if b_conf < a_conf:
            return False
    if a.headers is not None:
        b_headers = b.headers or {}
        for name, value in a.headers.items():
            if name not in b_headers or (value != "*" and b_headers[name] != value):
                return False
    for flag in ("has_tools", "has_images", "stream"):
        if getattr(a, flag) is not None and getattr(a, flag) != getattr(b, flag):
            return False
    for lo in ("min_prompt_tokens", "min_complexity"):
        if not _at_least(getattr(a, lo), getattr(b, lo)):
            return False
    for hi in ("max_prompt_tokens", "max_task_confidence", "max_complexity"):
        if not _at_most(getattr(a, hi), getattr(b, hi)):
            return False
    return a.regex is None or a.regex == b.regex


def _at(rule: CompiledRoute) -> str:
    return f"{rule.file}:{rule.line}" if rule.line else rule.file


def shadowed(policy: Policy) -> list[PolicyIssue]:
    out = []
    floor = policy.classifier.min_confidence
    rules = policy.routes
    for j, later in enumerate(rules):
        for earlier in rules[:j]:
            if covers(earlier.route.match, later.route.match, floor):
                same = covers(later.route.match, earlier.route.match, floor)
                why = "has the same conditions" if same else "matches every request it would"
                out.append(
                    PolicyIssue(
                        later.file,
                        later.line,
                        f"routes.{later.route.name}",
                        f"rule {later.route.name!r} never matches: rule {earlier.route.name!r} ({_at(earlier)}), "
                        f"evaluated before it (priority {earlier.route.priority} against {later.route.priority}), "
                        f"{why}",
                    )
                )
                break
    return out


def unused_clusters(policy: Policy) -> list[PolicyIssue]:
    used: set[str] = set()
    decisions = [r.decision for r in policy.routes]
    decisions += [*policy.pinned.values(), *policy.defaults.values()]
    if policy.low_confidence is not None:
        decisions.append(policy.low_confidence)
    for d in decisions:
        used.update(t.cluster for t in d.targets)
    used.update(b.downgrade_to for b in policy.budgets if b.downgrade_to)
    out = []
    for name in policy.clusters:
        if name not in used:
            file, line = policy.locations.get(f"clusters.{name}", ("(policy)", None))
            out.append(
                PolicyIssue(
                    file,
                    line,
                    f"clusters.{name}",
                    f"cluster {name!r} is never used: no rule, alias or fallback sends requests to it",
                )
            )
    return out


def unused_routes(policy: Policy) -> list[PolicyIssue]:
    """A ``target_only`` route is only ever reached by name: one that nothing names is dead."""
    named = {d.route for d in policy.defaults.values()}
    if policy.low_confidence is not None:
        named.add(policy.low_confidence.route)
    out = []
    for key, (file, line) in policy.locations.items():
        name = key.removeprefix("routes.")
        if key.startswith("routes.") and name not in named:
            out.append(
                PolicyIssue(
                    file,
                    line,
                    key,
                    f"route {name!r} is never used: it is target_only, and no alias's `default_route` or the "
                    "classifier's `low_confidence_route` names it",
                )
            )
    return out


def lint(policy: Policy) -> list[PolicyIssue]:
    return shadowed(policy) + unused_clusters(policy) + unused_routes(policy)
