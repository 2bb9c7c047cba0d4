from router.errors import (
    InvalidRequest,
    ModelNotFound,
    NoUpstreamAvailable,
    PayloadTooLarge,
    PolicyError,
    PolicyIssue,
    UpstreamRejected,
    UpstreamTimeout,
)


def test_status_and_openai_types() -> None:
    assert (InvalidRequest("x", param="p").status, InvalidRequest("x").error_type) == (400, "invalid_request_error")
    assert InvalidRequest("x", param="p").body()["error"]["param"] == "p"
    assert PayloadTooLarge("x").status == 413
    assert ModelNotFound("x").body()["error"]["code"] == "model_not_found"
    assert UpstreamTimeout("x").status == 504
    err = NoUpstreamAvailable("x", retry_after_s=3)
    assert (err.status, err.headers()) == (503, {"Retry-After": "3"})


def test_upstream_rejection_keeps_the_upstream_error() -> None:
    err = UpstreamRejected(422, {"error": {"message": "bad temp", "type": "BadRequestError", "param": "t", "code": 1}})
    assert (err.status, err.message, err.error_type, err.param, err.code) == (
        422,
        "bad temp",
        "BadRequestError",
        "t",
        "1",
    )
    assert UpstreamRejected(400, {}).message == "upstream rejected the request (400)"


def test_policy_issue_formats() -> None:
    assert str(PolicyIssue("a.yaml", 3, "routes[0].cluster", "unknown")) == "a.yaml:3: routes[0].cluster: unknown"
    assert str(PolicyIssue("a.yaml", None, "", "empty")) == "a.yaml: empty"
    assert "a.yaml:3" in str(PolicyError([PolicyIssue("a.yaml", 3, "", "x")]))


def test_vllms_own_error_shape_and_the_context_length_signs() -> None:
    vllm = UpstreamRejected(
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "BadRequestError",
            "code": 400,
        },
    )
    assert (vllm.message, vllm.error_type, vllm.code) == (
        "This model's maximum context length is 8192 tokens.",
        "BadRequestError",
        None,
    )
    assert vllm.context_exceeded
    openai = UpstreamRejected(
        400, {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    )
    assert openai.context_exceeded
    assert not UpstreamRejected(
        400, {"error": {"message": "bad temperature", "code": "invalid_value"}}
    ).context_exceeded
