from __future__ import annotations

from router.upstream.estimate import MIN_SAMPLES, REFRESH_S, Estimate


def test_p95_needs_enough_samples_in_the_window() -> None:
    e = Estimate(window_s=10)
    for _ in range(MIN_SAMPLES - 1):
        e.observe(0, 0.1)
    assert e.p95(0) is None
    e.observe(0, 0.1)
    assert e.p95(0) == 0.1
    assert e.p95(11) is None  # all samples left the window
    assert e.count(11) == 0


def test_p95_and_ewma() -> None:
    e = Estimate()
    for i in range(100):
        e.observe(i * 0.01, (i + 1) / 100)  # 0.01 .. 1.00
    assert e.p95(1) == 0.95
    assert e.ewma is not None
    assert 0.9 < e.ewma <= 1.0  # recent samples dominate
    e.observe(1.0, 5.0)
    assert e.p95(1.0) == 0.95  # at most REFRESH_S old
    assert e.p95(1.0 + REFRESH_S) == 0.96  # then recomputed with the new sample


def test_the_window_holds_at_most_max_samples() -> None:
    e = Estimate(max_samples=20)
    for i in range(100):
        e.observe(0, float(i))
    assert e.count(0) == 20
    assert e.p95(0) == 98.0  # nearest rank over the 20 kept (80..99)
