"""Pure endpoint choice within a cluster (no I/O): which endpoints to try, in which order."""

from __future__ import annotations

from collections.abc import Sequence


def attempt_order(healthy: Sequence[bool], start: int, limit: int) -> list[int]:
    """Round-robin from ``start``: healthy endpoints first, then the rest, at most ``limit`` of them.

    Unhealthy endpoints stay at the back rather than being dropped: a health check can be stale, and
    a request should still find a target if every check happens to be failing.
    """
    n = len(healthy)
    if n == 0 or limit <= 0:
        return []
    ring = [(start + i) % n for i in range(n)]
    ordered = [i for i in ring if healthy[i]] + [i for i in ring if not healthy[i]]
    return ordered[:limit]
