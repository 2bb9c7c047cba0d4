"""Endpoint choice within a cluster (pure): load scores, power of two choices, rendezvous affinity."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Load:
    """What is known of one endpoint's load. ``running``/``waiting``/``kv`` are scraped from vLLM's
    ``/metrics`` (None when not scraped recently); ``in_flight`` is this proxy's own count."""

    in_flight: int
    running: float | None = None
    waiting: float | None = None
    kv: float | None = None


def score(load: Load, waiting_weight: float, kv_weight: float) -> float:
    """Outstanding requests (ours, or the engine's own count when it sees more: other proxy replicas),
    plus a penalty for a queue in the engine and for a filling KV cache."""
    outstanding = float(load.in_flight)
    if load.running is not None or load.waiting is not None:
        outstanding = max(outstanding, (load.running or 0.0) + (load.waiting or 0.0))
    return outstanding + waiting_weight * (load.waiting or 0.0) + kv_weight * (load.kv or 0.0)


def two_choices(scores: Sequence[float], rng: random.Random) -> int:
    """Power of two choices: the less loaded of two distinct random candidates (the first on a tie)."""
    n = len(scores)
    if n == 1:
        return 0
    a = rng.randrange(n)
    b = rng.randrange(n - 1)
    b += b >= a
    return a if scores[a] <= scores[b] else b


def rendezvous(key: bytes, names: Sequence[str]) -> int:
    """Highest-random-weight hashing: the same key picks the same name on every proxy replica, and only
    the keys of a removed name move when the set changes."""
    best, best_w = 0, b""
    for i, name in enumerate(names):
        w = hashlib.blake2b(key + b"\0" + name.encode(), digest_size=8).digest()
        if w > best_w:
            best, best_w = i, w
    return best


def pick(
    scores: Sequence[float],
    names: Sequence[str],
    rng: random.Random,
    affinity: bytes | None = None,
    slack: float = 0.0,
) -> tuple[int, bool]:
    """The candidate to try, and whether affinity chose it. Affinity holds unless its endpoint's score
    exceeds the least loaded one's by more than ``slack``; then power of two choices decides."""
    if affinity is not None:
        preferred = rendezvous(affinity, names)
        if scores[preferred] <= min(scores) + slack:
            return preferred, True
    return two_choices(scores, rng), False


def tier_shares(healthy: Sequence[float], factor: float) -> list[float]:
    """Envoy's priority load: tier by tier, cheapest first, each takes min(what is left, its healthy share
    × ``factor``); when the tiers together are under 100 % healthy the shares are scaled up to add to 1.
    All zero when no tier has a healthy endpoint."""
    left, out = 1.0, []
    for h in healthy:
        share = min(left, min(1.0, h * factor))
        out.append(share)
        left -= share
    total = sum(out)
    return [x / total for x in out] if total > 0 else out


def pick_tier(shares: Sequence[float], rng: random.Random) -> int:
    """A tier drawn by its share (the first with a share when rounding leaves a gap)."""
    x, acc = rng.random(), 0.0
    for i, share in enumerate(shares):
        acc += share
        if x < acc:
            return i
    return max(range(len(shares)), key=lambda i: shares[i] > 0)


def round_robin(n: int, start: int) -> int:
    return start % n if n else 0
