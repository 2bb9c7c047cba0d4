"""Policies of the pool-economics and tier tests, written once.

``metered(replicas)``: a pool `pool` of that many replicas at $3.6 an hour each ($0.001 a second), 1,000
input and 100 output tokens a second per replica (so $1 and $10 per million at full use, and one replica
costs $86.4 a day), beside a frontier cluster `api` at $5 / $15 per million. ``TIERED``: two spot replicas
at $0.9 an hour and one on demand.
"""

from __future__ import annotations

from router.policy.compile import Policy, compile_texts


def metered(replicas: int = 1, pool_extra: str = "", tail: str = "models:\n  m: {cluster: pool}\n") -> str:
    endpoints = ", ".join(f'"http://10.0.0.{i + 1}:1/v1"' for i in range(replicas))
    return f"""
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints: [{endpoints}]
    cost: {{usd_per_gpu_hour: 3.6, input_tokens_per_second: 1000, output_tokens_per_second: 100}}
{pool_extra}  api:
    kind: frontier
    model: openai/m
    price: {{input_usd_per_mtok: 5, output_usd_per_mtok: 15}}
{tail}"""


TIERED = """
version: 1
clusters:
  pool:
    kind: vllm
    model: m
    endpoints:
      - {url: "http://10.0.0.1:1/v1", tier: spot, usd_per_gpu_hour: 0.9}
      - {url: "http://10.0.0.2:1/v1", tier: spot, usd_per_gpu_hour: 0.9}
      - {url: "http://10.0.0.3:1/v1", tier: on-demand}
    load_balancing: {endpoint_capacity: 2}
  other:
    kind: openai
    model: m
    endpoints: ["http://10.0.0.4:1/v1"]
models:
  m: {cluster: pool}
  o: {cluster: other}
"""


def compiled(text: str) -> Policy:
    return compile_texts([("p.yaml", text)], env={})
