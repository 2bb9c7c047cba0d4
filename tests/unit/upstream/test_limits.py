from __future__ import annotations

from router.upstream.limits import retries_allowed, retry_after


def test_retry_budget() -> None:
    assert retries_allowed(0, 64, 50, 8) == 8  # the floor
    assert retries_allowed(100, 64, 50, 8) == 50  # the budget share
    assert retries_allowed(1000, 64, 50, 8) == 64  # the cap
    assert retries_allowed(1000, 0, 50, 8) == 0  # retries off


def test_retry_after_header_value() -> None:
    assert retry_after(0) == 1
    assert retry_after(1.2) == 2
    assert retry_after(30) == 30
