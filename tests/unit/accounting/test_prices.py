"""The price book: self-hosted pools priced by GPU time, frontier models by litellm's bundled map or the
policy's override, and a price nobody knows refused with file and line."""

from __future__ import annotations

import pytest

from router.accounting.costs import Prices
from router.accounting.prices import price_book
from router.errors import PolicyError
from router.policy.compile import compile_texts
from router.types import Usage

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, model: m, endpoints: ["http://10.0.0.1/v1"]}
  gpt: {kind: frontier, model: openai/gpt-4o}
  deal: {kind: frontier, model: openai/gpt-4o, price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
models:
  m: {cluster: pool}
costs: {baseline_model: openai/gpt-4o}
"""


def test_each_kind_of_cluster_has_its_price() -> None:
    book = price_book(compile_texts([("p.yaml", POLICY)], env={}))
    usage = Usage(1_000_000, 1_000_000)
    assert book.clusters["deal"].cost(usage) == pytest.approx(5.0)
    gpt = book.clusters["gpt"]
    assert gpt == book.baseline  # litellm's own price for the same model
    assert gpt.cost(Usage(1_000_000, 0)) == pytest.approx(2.5)  # the bundled map of litellm 1.106.2
    pool = book.clusters["pool"]
    assert pool.cost(usage) < gpt.cost(usage) / 10  # cents against dollars: the router's premise
    assert isinstance(pool, Prices)


def test_an_unknown_price_is_a_policy_error_naming_file_and_line() -> None:
    deal = "  deal: {kind: frontier, model: openai/gpt-4o, price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}"
    text = POLICY.replace(deal, "  deal: {kind: frontier, model: acme/x9}")
    with pytest.raises(PolicyError) as info:
        price_book(compile_texts([("p.yaml", text)], env={}))
    (issue,) = info.value.issues
    assert (issue.file, issue.line, issue.path) == ("p.yaml", 6, "clusters.deal.price")
    assert "acme/x9" in issue.message
