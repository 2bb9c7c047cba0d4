"""The ejection state machine: eject after N, longer each time, probation, forgiveness, holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.upstream.outlier import EjectionRule, OutlierState, may_eject

RULE = EjectionRule(consecutive_failures=3, base_s=10, max_s=25, probation_successes=2)


def test_ejected_after_n_consecutive_failures_only() -> None:
    o = OutlierState()
    assert o.failure(0, RULE, True, "http_500") is None
    o.success(1, RULE)  # a success in between resets the count
    assert o.failure(2, RULE, True, "http_500") is None
    assert o.failure(3, RULE, True, "http_500") is None
    ejection = o.failure(4, RULE, True, "connect")
    assert ejection is not None
    assert (ejection.seconds, ejection.count, ejection.reason) == (10, 1, "connect")
    assert o.ejected(13.9)
    assert not o.ejected(14)


def test_probation_re_ejects_on_one_failure_for_longer_then_caps() -> None:
    o = OutlierState()
    for t in range(3):
        o.failure(t, RULE, True, "x")
    assert o.ejected(5)
    assert o.readmit(12, RULE)  # ejection over: on probation
    assert o.probation == 2
    second = o.failure(12.5, RULE, True, "x")  # a single failure on probation
    assert second is not None
    assert second.seconds == 20  # base x 2
    o.readmit(40, RULE)
    third = o.failure(40, RULE, True, "x")
    assert third is not None
    assert third.seconds == 25  # capped


def test_probation_ends_after_successes_and_the_multiplier_is_forgiven_over_time() -> None:
    o = OutlierState()
    for t in range(3):
        o.failure(t, RULE, True, "x")
    o.readmit(12, RULE)
    o.success(12, RULE)
    o.success(13, RULE)
    assert o.probation == 0
    assert o.ejections == 1
    o.success(20, RULE)  # before base_s has passed since probation ended: not yet
    assert o.ejections == 1
    o.success(23.5, RULE)
    assert o.ejections == 0
    # Back to needing N failures again, and a first ejection's duration.
    assert o.failure(30, RULE, True, "x") is None


def test_a_cluster_that_may_not_eject_keeps_counting() -> None:
    o = OutlierState()
    for t in range(5):
        assert o.failure(t, RULE, False, "x") is None
    assert o.failure(6, RULE, True, "x") is not None


def test_hold_follows_retry_after_capped_and_never_shortens() -> None:
    o = OutlierState()
    held = o.hold(0, 7, RULE, "http_429")
    assert held is not None
    assert held.seconds == 7
    assert o.hold(1, 2, RULE, "http_429") is None  # would end sooner than the hold in force
    longer = o.hold(1, 100, RULE, "http_429")
    assert longer is not None
    assert longer.seconds == 25
    assert o.failure(2, RULE, True, "x") is None  # failures during an ejection do not pile up


def test_immediate_failure_ejects_at_once() -> None:
    o = OutlierState()
    assert o.failure(0, RULE, True, "http_429", immediate=True) is not None


def test_max_ejection_percent() -> None:
    assert may_eject(0, 3, 0)  # one may always be ejected
    assert not may_eject(1, 3, 50)
    assert may_eject(1, 3, 67)
    assert not may_eject(2, 3, 67)
    assert may_eject(2, 3, 100)
    assert not may_eject(0, 0, 100)


@given(st.lists(st.tuples(st.floats(0, 5), st.booleans()), max_size=60))
def test_never_ejected_longer_than_the_cap(events: list[tuple[float, bool]]) -> None:
    o, now = OutlierState(), 0.0
    for dt, ok in events:
        now += dt
        if ok:
            o.success(now, RULE)
        else:
            e = o.failure(now, RULE, True, "x")
            if e is not None:
                assert 0 < e.seconds <= RULE.max_s
        assert o.remaining(now) <= RULE.max_s


def test_a_passing_health_check_lifts_an_ejection_but_not_a_hold() -> None:
    """Issue #14: a restarted replica passed its health checks but stayed ejected for its whole ejection
    (and was ejected again when that ran out, still dead then). Envoy lifts an ejection when an active
    check passes; an upstream's own Retry-After stands."""
    rule = EjectionRule(consecutive_failures=1, base_s=30, max_s=300, probation_successes=1)
    s = OutlierState()
    assert s.failure(0.0, rule, True, "connect") is not None
    assert s.lift(5.0, rule)
    assert not s.ejected(5.0)
    assert s.probation == 1  # on probation: one failure ejects it again, for longer
    assert s.failure(6.0, rule, True, "connect") is not None
    assert s.remaining(6.0) == 60
    assert not OutlierState().lift(1.0, rule)  # nothing to lift
    held = OutlierState()
    assert held.hold(0.0, 20.0, rule, "http_429 with Retry-After") is not None
    assert not held.lift(5.0, rule)
    assert held.ejected(5.0)
