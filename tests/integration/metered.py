"""The metered pool the shared-state suites run against (``test_shared_state`` and the money suite):
$1 a GPU-second over 1000 tokens a second, so every token costs $0.001, and a baseline priced high enough
that savings show. A ``str.format`` template (``{pool}``; literal braces doubled) ending at ``budgets:``,
for each suite to append its own."""

POOL_POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["http://127.0.0.1:{pool}/v1"]
    model: small-model
    cost: {{usd_per_gpu_hour: 3600, input_tokens_per_second: 1000, output_tokens_per_second: 1000}}
    circuit_breaker: {{max_in_flight: 1000}}
models:
  chat: {{cluster: pool}}
auth: {{anonymous: false}}
costs: {{baseline_model: openai/gpt-4o, baseline_price: {{input_usd_per_mtok: 2500, output_usd_per_mtok: 10000}}}}
budgets:
"""
