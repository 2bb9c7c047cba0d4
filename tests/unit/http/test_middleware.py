from aiohttp.test_utils import make_mocked_request

from router.http.middleware import request_id, router_headers
from router.types import RequestOutcome


def test_request_ids_are_kept_only_when_sane() -> None:
    assert request_id(make_mocked_request("GET", "/", headers={"x-request-id": "ok-1.2:3"})) == "ok-1.2:3"
    assert len(request_id(make_mocked_request("GET", "/", headers={"x-request-id": "bad id\n"}))) == 32
    assert len(request_id(make_mocked_request("GET", "/", headers={"x-request-id": "x" * 200}))) == 32


def test_router_headers_only_name_what_is_known() -> None:
    assert router_headers(RequestOutcome("r")) == {"x-request-id": "r"}
    full = RequestOutcome("r", route="a", cluster="b", upstream_model="c")
    assert router_headers(full) == {
        "x-request-id": "r",
        "x-router-route": "a",
        "x-router-cluster": "b",
        "x-router-upstream-model": "c",
    }
