"""One endpoint's live state: what it shows of its URL, what it serves, and when scraped load counts."""

from __future__ import annotations

from router.upstream.balance import Load
from router.upstream.endpoints import Endpoint


def test_the_label_hides_userinfo_and_query_everywhere_it_is_shown() -> None:
    e = Endpoint.parse("https://user:s3cret@pool.internal/v1?token=t0k")
    assert (e.host, e.port) == ("pool.internal", 443)
    assert "s3cret" not in e.label
    assert "t0k" not in e.label
    assert e.shown(f"cannot reach {e.url}: refused") == f"cannot reach {e.label}: refused"


def test_it_serves_its_adapters_and_the_base_model() -> None:
    e = Endpoint.parse("http://h:8000/v1", frozenset({"a"}))
    assert e.port == 8000
    assert e.serves(None)
    assert e.serves("a")
    assert not e.serves("b")


def test_available_needs_health_and_no_ejection() -> None:
    e = Endpoint.parse("http://h/v1")
    assert e.available(0.0)
    e.outlier.ejected_until = 10.0
    assert not e.available(5.0)
    assert e.available(11.0)
    e.healthy = False
    assert not e.available(11.0)


def test_scraped_load_counts_only_while_fresh() -> None:
    e = Endpoint.parse("http://h/v1")
    e.in_flight = 2
    assert e.load(100.0, 2.0) == Load(2)  # never scraped
    e.scraped.running, e.scraped.waiting, e.scraped.kv, e.scraped.at = 5.0, 1.0, 0.5, 99.0
    assert e.load(100.0, 2.0) == Load(2, 5.0, 1.0, 0.5)
    assert e.load(110.0, 2.0) == Load(2)  # older than three scrape intervals
    assert e.load(100.0, 0.0) == Load(2)  # scraping is off
