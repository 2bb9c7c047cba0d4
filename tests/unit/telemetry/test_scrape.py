"""The fast /metrics reader agrees with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from router.telemetry.scrape import vllm_load

PAGE = b"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 5.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="a b"} 2.0 1712345678000
vllm:num_requests_waiting{engine="1",model_name="a b"} 0.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
# TYPE vllm:num_requests_running_total counter
vllm:num_requests_running_total 99
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 3.0
"""


def reference(page: bytes) -> tuple[float, float, float]:
    running = waiting = 0.0
    kv = 0.0
    for family in text_string_to_metric_families(page.decode()):
        for sample in family.samples:
            if sample.name == "vllm:num_requests_running":
                running += sample.value
            elif sample.name == "vllm:num_requests_waiting":
                waiting += sample.value
            elif sample.name in ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"):
                kv = max(kv, sample.value)
    return running, waiting, kv


def test_matches_prometheus_client() -> None:
    load = vllm_load(PAGE)
    assert (load.running, load.waiting, load.kv) == reference(PAGE) == (12.0, 2.0, 0.75)


def test_older_kv_name_and_missing_gauges() -> None:
    old = vllm_load(b"vllm:gpu_cache_usage_perc 0.5\nvllm:num_requests_running 1\n")
    assert (old.running, old.waiting, old.kv) == (1.0, None, 0.5)
    assert vllm_load(b'garbage\nvllm:num_requests_waiting{x="}"} nope\n') == vllm_load(b"")


def test_the_emulators_page() -> None:
    from prometheus_client import generate_latest

    from router.emulator.app import STATE, create_emulator
    from router.emulator.config import EmulatorConfig

    state = create_emulator(EmulatorConfig())[STATE]
    state.running, state.waiting, state.kv_tokens = 3, 4, 50_000
    page = generate_latest(state.registry)
    load = vllm_load(page)
    assert (load.running, load.waiting, load.kv) == reference(page) == (3.0, 4.0, 0.5)


def test_token_counters_are_summed_over_models_and_engines() -> None:
    page = PAGE + (
        b"# TYPE vllm:prompt_tokens_total counter\n"
        b'vllm:prompt_tokens_total{engine="0",model_name="m"} 1000.0\n'
        b'vllm:prompt_tokens_total{engine="0",model_name="m-lora"} 500.0\n'
        b'vllm:prompt_tokens_created{engine="0",model_name="m"} 1.7e9\n'
        b"# TYPE vllm:generation_tokens_total counter\n"
        b'vllm:generation_tokens_total{engine="0",model_name="m"} 42.0\n'
    )
    load = vllm_load(page)
    families = {f.name: f for f in text_string_to_metric_families(page.decode())}
    expected = [
        sum(s.value for s in families[n].samples if s.name.endswith("_total"))
        for n in families
        if n in ("vllm:prompt_tokens", "vllm:generation_tokens")
    ]
    assert (load.prompt_tokens, load.generation_tokens) == tuple(expected) == (1500.0, 42.0)
    assert vllm_load(PAGE).prompt_tokens is None  # an engine that does not export them
