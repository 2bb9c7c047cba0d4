"""The one exception tree of the router.

Every error that can reach a client knows its HTTP status and its OpenAI error ``type``/``code``;
one middleware (:mod:`router.http.middleware`) renders it as OpenAI error JSON. Policy errors never
reach a client: they are collected with file, line and key path and printed by ``router policy check``
or logged by a reload.

::

    RouterError                      500 server_error
    ├── InvalidRequest               400 invalid_request_error   (param names the field)
    │   ├── PayloadTooLarge          413 invalid_request_error
    │   └── RequestTimeout           408 invalid_request_error   (the body did not arrive in time)
    ├── Unauthorized                 401 authentication_error    code=missing_api_key|invalid_api_key|expired_api_key
    ├── Forbidden                    403 permission_error
    ├── ModelNotFound                404 invalid_request_error   code=model_not_found
    ├── BudgetExceeded               429 rate_limit_error        code=budget_exceeded (Retry-After)
    ├── StateUnavailable             503 server_error            code=state_unavailable (a fail-closed budget)
    ├── UpstreamError                502 server_error            code=upstream_error
    │   ├── UpstreamTimeout          504 server_error            code=upstream_timeout
    │   ├── NoUpstreamAvailable      503 server_error            code=no_upstream_available (Retry-After)
    │   └── UpstreamRejected         4xx from the upstream, passed through (the client's request was bad)
    └── AttemptFailed                one upstream attempt failed; the pipeline decides: next target or give up
    PolicyError                      a set of PolicyIssue (file, line, key path, message); not an HTTP error
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class RouterError(Exception):
    """Base of every error the router raises on purpose."""

    status: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> dict[str, str]:
        """Extra response headers (for example ``Retry-After``)."""
        return {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(RouterError):
    status = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class RequestTimeout(InvalidRequest):
    """The client did not send its whole body within the server's body time limit."""

    status = 408
    code = "request_timeout"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class Unauthorized(RouterError):
    status = 401
    error_type = "authentication_error"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(RouterError):
    status = 403
    error_type = "permission_error"
    code = "forbidden"


class BudgetExceeded(RouterError):
    """A budget with ``on_exhausted: deny`` has no room for this request."""

    status = 429
    error_type = "rate_limit_error"
    code = "budget_exceeded"

    def __init__(self, message: str, *, budget: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.budget = budget
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s), "x-router-budget": self.budget}


class StateUnavailable(RouterError):
    """The shared state store is unreachable and a budget of the request fails closed."""

    status = 503
    error_type = "server_error"
    code = "state_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class ModelNotFound(RouterError):
    status = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class NotFound(RouterError):
    """An admin lookup found nothing (a decision no longer kept)."""

    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class UpstreamError(RouterError):
    status = 502
    code: str | None = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class NoUpstreamAvailable(UpstreamError):
    status = 503
    code = "no_upstream_available"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class UpstreamRejected(UpstreamError):
    """The request itself is at fault: the upstream answered 400/413/422 (passed through), or the provider
    library could not translate it (``answered`` False). Not retried; never held against the upstream."""

    def __init__(self, status: int, payload: dict[str, Any], *, answered: bool = True) -> None:
        error = payload.get("error") if isinstance(payload.get("error"), dict) else None
        code = error.get("code") if error else None
        if error is None and payload.get("object") == "error":  # vLLM's own shape: the error at the top level
            error = payload
            code = payload.get("code") if isinstance(payload.get("code"), str) else None  # else the HTTP status
        message = str(error.get("message")) if error else f"upstream rejected the request ({status})"
        super().__init__(message)
        self.status = status
        self.error_type = str(error.get("type") or "invalid_request_error") if error else "invalid_request_error"
        self.code = str(code) if code is not None else None
        self.param = str(error["param"]) if error and error.get("param") is not None else None
        self.answered = answered

    @property
    def context_exceeded(self) -> bool:
        """The prompt (plus the output asked for) is longer than the model's context: another model with a
        larger one may still answer. OpenAI says so by code, vLLM and others by message."""
        return self.code == "context_length_exceeded" or "maximum context length" in self.message.lower()


class AttemptFailed(RouterError):
    """One upstream attempt failed before its first byte reached the client.

    ``kind`` is the OpenTelemetry ``error.type`` value (``timeout``, ``connect``, ``http_503``, ...);
    ``retriable`` says whether another target may be tried; ``retry_after_s`` is the upstream's
    ``Retry-After``, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retriable: bool,
        timeout: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retriable = retriable
        self.timeout = timeout
        self.retry_after_s = retry_after_s

    @property
    def public(self) -> str:
        """What a client may be told: the kind of failure, never the upstream's URL or its own words
        (those stay in the log, the span and the admin view)."""
        if self.kind.startswith("http_"):
            return f"answered HTTP {self.kind[5:]}"
        return _PUBLIC_KINDS.get(self.kind, "failed")


_PUBLIC_KINDS = {
    "timeout": "timed out",
    "connect": "could not be reached",
    "protocol": "sent an invalid response",
}


class ClassifierUnavailable(RouterError):
    """The request could not be classified (encoder not loaded, failed, or too slow).

    Never reaches a client: the pipeline routes the request by the rules without classification.
    ``reason`` is the metric label (``unavailable``, ``encoder``, ``timeout``).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy file, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class PolicyError(Exception):
    """A policy did not load: every issue found, not just the first."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues
