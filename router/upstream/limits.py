"""Concurrency limits of one cluster (pure arithmetic; the waiting itself is in the runtime)."""

from __future__ import annotations


def retries_allowed(in_flight: int, max_retries: int, budget_percent: float, min_concurrency: int) -> int:
    """Retries that may be in flight at once: the budget (a share of requests in flight, at least
    ``min_concurrency``), never more than ``max_retries``."""
    return min(max_retries, max(min_concurrency, int(in_flight * budget_percent / 100)))


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return max(1, int(seconds + 0.999))
