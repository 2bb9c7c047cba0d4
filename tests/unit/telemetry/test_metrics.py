from router.telemetry.metrics import Metrics
from router.types import Usage


def test_metrics_live_in_their_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.record_request("r", "c", 200, True, 0.1, 0.01, Usage(3, 4))
    assert b'router_requests_total{cluster="c",route="r",status="200"} 1.0' in a.render()
    assert b"router_requests_total{" not in b.render()


def test_attempts_record_genai_histograms() -> None:
    m = Metrics()
    m.record_attempt("vllm", "m", "pool", 0.2, None, Usage(10, 20), 0.05)
    m.record_attempt("vllm", "m", "pool", 0.2, "timeout", None, None)
    text = m.render().decode()
    assert 'router_upstream_errors_total{cluster="pool",error_type="timeout"} 1.0' in text
    assert 'router_upstream_attempts_total{cluster="pool",outcome="success"} 1.0' in text
    assert 'gen_ai_token_type="output",router_cluster="pool"} 20.0' in text
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_count" in text
