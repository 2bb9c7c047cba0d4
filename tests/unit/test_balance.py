from hypothesis import given
from hypothesis import strategies as st

from router.balance import attempt_order


def test_round_robin_with_unhealthy_last() -> None:
    assert attempt_order([True, True, True], 1, 3) == [1, 2, 0]
    assert attempt_order([True, False, True], 1, 3) == [2, 0, 1]
    assert attempt_order([False, False], 0, 1) == [0]
    assert attempt_order([], 0, 2) == []


@given(st.lists(st.booleans(), max_size=8), st.integers(0, 20), st.integers(0, 10))
def test_order_is_a_prefix_of_a_permutation(healthy: list[bool], start: int, limit: int) -> None:
    order = attempt_order(healthy, start, limit)
    assert len(order) == min(limit, len(healthy))
    assert len(set(order)) == len(order)
    first_bad = next((k for k, i in enumerate(order) if not healthy[i]), len(order))
    assert all(not healthy[i] for i in order[first_bad:])
