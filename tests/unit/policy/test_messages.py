"""Schema errors in the policy's words, and did-you-mean from the keys allowed at the place."""

from __future__ import annotations

from router.policy.messages import did_you_mean, keys_at
from router.policy.schema import PolicyFile


def test_the_keys_allowed_where_an_unknown_one_was_written() -> None:
    assert "max_in_flight" in keys_at(PolicyFile, ("clusters", "pool", "circuit_breaker"))
    assert "priority" in keys_at(PolicyFile, ("routes", 3))
    assert "tenants" in keys_at(PolicyFile, ("routes", 0, "match"))
    assert "cost" in keys_at(PolicyFile, ("clusters", "any-name"))  # a pool's keys
    assert "cooldown" in keys_at(PolicyFile, ("clusters", "any-name"))  # and a frontier cluster's
    assert did_you_mean("priorty", keys_at(PolicyFile, ("routes", 0))) == "; did you mean `priority`?"
    assert did_you_mean("zzzz", keys_at(PolicyFile, ("routes", 0))) == ""
