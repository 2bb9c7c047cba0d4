from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.upstream.balance import Load, pick, rendezvous, round_robin, score, two_choices


def test_score_takes_the_engines_count_when_it_sees_more_and_penalises_queues() -> None:
    assert score(Load(3), 1, 4) == 3
    assert score(Load(3, running=1, waiting=0, kv=0), 1, 4) == 3  # ours is the fresher count
    assert score(Load(1, running=6, waiting=2, kv=0.5), 1, 4) == 8 + 2 + 2  # other proxies' requests too


def test_two_choices_prefers_the_less_loaded_and_never_the_worst_of_two() -> None:
    rng = random.Random(1)
    wins = Counter(two_choices([0, 5, 10], rng) for _ in range(3000))
    assert wins[2] == 0  # the most loaded of three can never win a pair
    assert wins[0] > wins[1] > 0
    assert two_choices([7], rng) == 0


@given(st.lists(st.floats(0, 100), min_size=1, max_size=10), st.integers(0, 2**32))
def test_two_choices_returns_a_candidate_at_most_as_loaded_as_the_median(scores: list[float], seed: int) -> None:
    i = two_choices(scores, random.Random(seed))
    assert 0 <= i < len(scores)
    assert sum(s < scores[i] for s in scores) < len(scores)  # never strictly worse than everyone


def test_rendezvous_is_stable_and_moves_only_the_removed_keys() -> None:
    names = ["a", "b", "c", "d"]
    keys = [f"k{i}".encode() for i in range(400)]
    before = {k: names[rendezvous(k, names)] for k in keys}
    assert before == {k: names[rendezvous(k, names)] for k in keys}
    assert len(set(before.values())) == 4
    fewer = ["a", "b", "d"]
    after = {k: fewer[rendezvous(k, fewer)] for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != "c")


def test_affinity_holds_until_its_endpoint_is_loaded_beyond_the_slack() -> None:
    rng = random.Random(3)
    names = ["a", "b", "c"]
    key = b"session-1"
    home = rendezvous(key, names)
    scores = [0.0, 0.0, 0.0]
    assert pick(scores, names, rng, key, slack=2) == (home, True)
    scores[home] = 2
    assert pick(scores, names, rng, key, slack=2) == (home, True)
    scores[home] = 2.5
    chosen, by_affinity = pick(scores, names, rng, key, slack=2)
    assert not by_affinity
    assert chosen != home
    assert round_robin(3, 4) == 1


def test_tier_shares_follow_envoys_priority_load() -> None:
    from router.upstream.balance import tier_shares

    assert tier_shares([1.0, 1.0], 1.4) == [1.0, 0.0]  # a healthy cheapest tier takes everything
    assert tier_shares([0.75, 1.0], 1.4) == [1.0, 0.0]  # 75 % healthy x 1.4 still covers it all
    assert tier_shares([0.5, 1.0], 1.4) == pytest.approx([0.7, 0.3])
    assert tier_shares([0.0, 1.0], 1.4) == [0.0, 1.0]  # spot gone: all on demand
    assert tier_shares([0.2, 0.2], 1.0) == pytest.approx([0.5, 0.5])  # under 100 % in all: scaled up
    assert tier_shares([0.0, 0.0], 1.4) == [0.0, 0.0]


@given(st.lists(st.floats(0, 1), min_size=1, max_size=5), st.floats(1, 10), st.integers(0, 2**32))
def test_a_drawn_tier_always_has_a_share(healthy: list[float], factor: float, seed: int) -> None:
    from router.upstream.balance import pick_tier, tier_shares

    shares = tier_shares(healthy, factor)
    if any(shares):
        assert sum(shares) == pytest.approx(1.0)
        assert shares[pick_tier(shares, random.Random(seed))] > 0
