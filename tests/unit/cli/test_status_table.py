"""``router status``'s table: one line per cluster, one per endpoint, with its tier when it has one."""

from __future__ import annotations

from typing import Any

from router.cli.status_table import disagreements, render


def endpoint(url: str, tier: str, state: str = "up") -> dict[str, Any]:
    return {
        "url": url, "tier": tier, "state": state, "ejected": False, "in_flight": 1, "attempts": 9,
        "failures": 0, "ejections": 0, "scraped": None,
    }  # fmt: skip


def test_endpoints_show_their_tier() -> None:
    doc = {
        "clusters": [
            {
                "name": "pool", "kind": "vllm", "model": "m", "in_flight": 1, "pending": 0, "retries_in_flight": 0,
                "limits": {"max_in_flight": 8, "max_pending": 0}, "available": True,
                "estimates": {"ttft": {"p95_ms": 12.0}, "latency": {"p95_ms": None, "ewma_ms": None}},
                "endpoints": [endpoint("http://a/v1", "spot"), endpoint("http://b/v1", "default", "down")],
            }
        ]
    }  # fmt: skip
    lines = render(doc).splitlines()
    assert lines[0].startswith("pool (vllm, m): in flight 1/8")
    assert "ttft p95 12 ms, latency -" in lines[0]
    assert lines[1].startswith("  up        http://a/v1 [spot]: in flight 1")
    assert lines[2].startswith("  down      http://b/v1: in flight 1")


def test_a_slow_endpoint_shows_its_ewma_before_its_p95_warms_up() -> None:
    slow = endpoint("http://slow/v1", "default")
    slow["estimates"] = {
        "ttft": {"p95_ms": None, "ewma_ms": 903.4, "samples": 3},
        "latency": {"p95_ms": 950.0, "ewma_ms": 940.0, "samples": 12},
    }
    doc = {
        "clusters": [
            {
                "name": "pool", "kind": "vllm", "model": "m", "in_flight": 0, "pending": 0, "retries_in_flight": 0,
                "limits": {"max_in_flight": 8, "max_pending": 0}, "available": True,
                "estimates": {"ttft": {"p95_ms": None, "ewma_ms": 450.0, "samples": 6}, "latency": {}},
                "endpoints": [slow],
            }
        ]
    }  # fmt: skip
    lines = render(doc).splitlines()
    assert "ttft ~450 ms (ewma, 6 samples), latency -" in lines[0]
    assert lines[1].endswith("ttft ~903 ms (ewma, 3 samples), latency p95 950 ms")


def test_replicas_that_see_an_endpoint_differently_are_named() -> None:
    def view(policy: str, state: str) -> dict[str, Any]:
        return {
            "policy": policy,
            "clusters": [{"name": "pool", "endpoints": [endpoint("http://a/v1", "default", state),
                                                        endpoint("http://b/v1", "default")]}],
        }  # fmt: skip

    same = {"http://r1": view("abc", "up"), "http://r2": view("abc", "up")}
    assert disagreements(same) == []
    split = {"http://r1": view("abc", "ejected"), "http://r2": view("abc", "up"), "http://r3": view("def", "up")}
    assert disagreements(split) == [
        "policy differs: abc on http://r1, http://r2; def on http://r3",
        "pool http://a/v1: ejected on http://r1; up on http://r2, http://r3",
    ]
