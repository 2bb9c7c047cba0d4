"""The live cluster gauges: read at scrape time, gone with their cluster."""

from router.telemetry.gauges import ClusterGauges, EndpointGauges
from router.telemetry.metrics import Metrics


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
