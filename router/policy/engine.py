"""The pure decision: (policy, request features) -> route, ordered targets, reason.

No I/O, no clock, no randomness: the same inputs always give the same decision.
"""

from __future__ import annotations

from router.errors import ModelNotFound
from router.policy.compile import Policy
from router.policy.schema import Match
from router.types import Decision, RequestFeatures


def mismatch(match: Match, f: RequestFeatures) -> str | None:
    """Why ``match`` does not hold for ``f`` (a short phrase), or ``None`` if it matches."""
    if match.models is not None and f.alias not in match.models:
        return f"model {f.alias!r} not in {match.models}"
    if match.tenants is not None and f.tenant not in match.tenants:
        return f"tenant {f.tenant!r} not in {match.tenants}"
    if match.headers is not None:
        for name, want in match.headers.items():
            got = f.headers.get(name)
            if got is None:
                return f"header {name!r} absent"
            if want != "*" and got != want:
                return f"header {name!r} is not {want!r}"
    if match.min_prompt_tokens is not None and f.prompt_tokens < match.min_prompt_tokens:
        return f"prompt tokens {f.prompt_tokens} < {match.min_prompt_tokens}"
    if match.max_prompt_tokens is not None and f.prompt_tokens > match.max_prompt_tokens:
        return f"prompt tokens {f.prompt_tokens} > {match.max_prompt_tokens}"
    if match.has_tools is not None and f.has_tools != match.has_tools:
        return f"has_tools is {f.has_tools}"
    if match.has_images is not None and f.has_images != match.has_images:
        return f"has_images is {f.has_images}"
    if match.stream is not None and f.stream != match.stream:
        return f"stream is {f.stream}"
    return None


def is_pinned(policy: Policy, alias: str) -> bool:
    return alias in policy.pinned


def decide(policy: Policy, f: RequestFeatures) -> Decision:
    """Pinned aliases answer at once; routed aliases take the first matching rule, else their default."""
    pinned = policy.pinned.get(f.alias)
    if pinned is not None:
        return pinned
    default = policy.defaults.get(f.alias)
    if default is None:
        raise ModelNotFound(
            f"The model `{f.alias}` does not exist. Available: {', '.join(sorted(policy.models))}.",
            param="model",
        )
    for compiled in policy.routes:
        if mismatch(compiled.route.match, f) is None:
            return compiled.decision
    return default
