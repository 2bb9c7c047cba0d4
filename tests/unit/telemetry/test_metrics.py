from router.telemetry.gauges import ClusterGauges, EndpointGauges
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


def test_cluster_gauges_are_read_at_scrape_time() -> None:
    m, live = Metrics(), [ClusterGauges("pool", 2, 1, {("ttft", "p95"): 0.25, ("ttft", "ewma"): None})]
    m.watch_clusters(lambda: live)
    text = m.render().decode()
    assert 'router_cluster_in_flight_requests{cluster="pool"} 2.0' in text
    assert 'router_cluster_pending_requests{cluster="pool"} 1.0' in text
    assert 'router_cluster_latency_estimate_seconds{cluster="pool",measure="ttft",stat="p95"} 0.25' in text
    assert 'stat="ewma"' not in text  # no estimate yet: no sample
    live[0] = ClusterGauges("pool", 0, 0, {}, [EndpointGauges("http://e/v1", True, True, 3)])
    text = m.render().decode()
    assert 'router_cluster_in_flight_requests{cluster="pool"} 0.0' in text
    assert 'router_endpoint_ejected{cluster="pool",endpoint="http://e/v1"} 1.0' in text
    assert 'router_endpoint_up{cluster="pool",endpoint="http://e/v1"} 1.0' in text
    assert 'router_endpoint_in_flight_requests{cluster="pool",endpoint="http://e/v1"} 3.0' in text
    live.clear()  # a reload removed the cluster: its series go too
    assert b'cluster="pool"' not in m.render()
