"""Ingress for the API: request id, the SERVER span, error rendering, metrics and the access log.

The one place where every failure becomes OpenAI error JSON. An unexpected exception is logged with
its traceback and answered with a generic 500; the client never sees a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from opentelemetry.trace import Span, SpanKind

from router.accounting.costs import header as cost_header
from router.errors import Forbidden, RouterError, Unauthorized
from router.http.keys import ADMIN_LISTENER, OUTCOME, PRINCIPAL, STATE
from router.http.observe import access_line, route_of, span_attributes
from router.serving import RouterState
from router.tenancy.auth import Principal, authenticate, require_admin
from router.types import RequestOutcome

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


OPERATOR = Principal("operator", None, admin=True)  # whoever calls the admin listener


def request_id(request: web.Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given is not None and _REQUEST_ID.match(given) else uuid.uuid4().hex


def router_headers(outcome: RequestOutcome) -> dict[str, str]:
    headers = {"x-request-id": outcome.request_id}
    if outcome.policy:
        headers["x-router-policy"] = outcome.policy
    if outcome.route:
        headers["x-router-route"] = outcome.route
    if outcome.cluster:
        headers["x-router-cluster"] = outcome.cluster
    if outcome.upstream_model:
        headers["x-router-upstream-model"] = outcome.upstream_model
    if outcome.task:
        headers["x-router-task"] = outcome.task
    if outcome.attempts:
        headers["x-router-attempts"] = str(len(outcome.attempts))
    if outcome.cost_usd is not None:
        headers["x-router-cost-usd"] = cost_header(outcome.cost_usd)
    if outcome.baseline_cost_usd is not None:
        headers["x-router-baseline-cost-usd"] = cost_header(outcome.baseline_cost_usd)
    if outcome.cache is not None:
        headers["x-router-cache"] = outcome.cache
    return headers


def error_response(status: int, body: dict[str, object], headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _from_http_exception(exc: web.HTTPException) -> tuple[int, dict[str, object]]:
    status = exc.status
    if status == 413:
        message = f"The request body is larger than the limit: {exc.text or ''}".strip()
    elif status == 404:
        message = "Unknown URL path."
    elif status == 405:
        message = "Method not allowed for this path."
    else:
        message = exc.reason
    kind = _STATUS_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        try:
            return await handler(request)
        except RouterError as exc:  # /metrics without an admin key
            return error_response(exc.status, exc.body(), exc.headers())
    state = request.app[STATE]
    outcome = RequestOutcome(request_id=request_id(request), started=time.perf_counter())
    request[OUTCOME] = outcome
    tracing = state.tracing
    ctx = tracing.propagator.extract(request.headers)
    chat = request.path == "/v1/chat/completions"
    if chat:
        state.metrics.in_flight.inc()
        state.in_flight += 1
    span_name = f"{request.method} {route_of(request)}"
    with tracing.tracer.start_as_current_span(
        span_name, context=ctx, kind=SpanKind.SERVER, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            unrouted = request.match_info.http_exception
            if unrouted is not None:  # no such path here (404/405) before any key is looked at
                raise unrouted
            # The admin listener's callers are operators (it is kept on their network); elsewhere, the key.
            principal = OPERATOR if request.app.get(ADMIN_LISTENER, False) else _authenticate(request, state)
            request[PRINCIPAL] = principal
            outcome.tenant, outcome.key_name = principal.tenant, principal.key_name
            resp = await handler(request)
        except RouterError as exc:
            outcome.error_type = exc.code or exc.error_type
            outcome.error_message, outcome.error_param = exc.message[:300], exc.param
            resp = error_response(exc.status, exc.body(), {**router_headers(outcome), **exc.headers()})
        except web.HTTPException as exc:
            status, body = _from_http_exception(exc)
            outcome.error_type = f"http_{status}"
            resp = error_response(status, body, router_headers(outcome))
        except asyncio.CancelledError:
            outcome.status = 499  # the client closed the connection (nginx's convention)
            outcome.error_type = outcome.error_type or "client_disconnected"
            _finish(request, outcome, span, chat)
            raise
        except Exception:
            log.exception("unhandled error in request %s", outcome.request_id)
            outcome.error_type = "internal"
            body = {
                "error": {
                    "message": f"Internal error in the router; see its log for request id {outcome.request_id}.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            resp = error_response(500, body, router_headers(outcome))
        if not resp.prepared:
            resp.headers.update(router_headers(outcome))
        outcome.status = resp.status
        _finish(request, outcome, span, chat)
        return resp


def is_operator(request: web.Request) -> bool:
    """Whether the caller may see operators' details: on the admin listener, with an admin key, or under a
    policy that lets anyone (``auth.admin_without_key``, for local use)."""
    if request.app.get(ADMIN_LISTENER, False):
        return True
    state = request.app[STATE]
    if state.serving.policy.auth.admin_without_key:
        return True
    principal = request.get(PRINCIPAL)
    if principal is None:  # outside /v1/ nothing authenticated the caller yet: a key is optional here
        if "authorization" not in request.headers:
            return False  # a probe without a key: not an authentication failure
        try:
            principal = _authenticate(request, state)
        except Unauthorized:
            return False
    return principal.admin


def require_operator(request: web.Request) -> None:
    """For operators' endpoints outside /v1/ (``/metrics``): 401 without a valid key, 403 without an admin one."""
    if is_operator(request):
        return
    state = request.app[STATE]
    principal = _authenticate(request, state)  # raises 401 for a missing or wrong key
    require_admin(principal, state.serving.policy.auth)


def _authenticate(request: web.Request, state: RouterState) -> Principal:
    serving = state.serving
    auth = serving.policy.auth
    try:
        principal = authenticate(request.headers, serving.keys, auth, dt.datetime.now(dt.UTC).date())
        if request.path.startswith("/v1/admin/"):
            require_admin(principal, auth)
    except (Unauthorized, Forbidden) as exc:
        state.metrics.auth_failures.labels(exc.code or "forbidden").inc()
        raise
    return principal


def _finish(request: web.Request, outcome: RequestOutcome, span: Span, chat: bool) -> None:
    """The request's end: its SERVER span's attributes, the request metrics and the access log line."""
    st = request.app[STATE]
    seconds = time.perf_counter() - outcome.started
    if span.is_recording():
        span_attributes(request, outcome, span)
    if chat:
        st.metrics.in_flight.dec()
        st.in_flight -= 1
        # The cluster that answered; for a request nobody answered (a 502, a 504), the last one tried.
        tried = outcome.attempts[-1].cluster if outcome.attempts else "none"
        st.metrics.record_request(
            outcome.route or "none",
            outcome.cluster or tried,
            outcome.status,
            outcome.stream,
            seconds,
            outcome.ttft_s,
            outcome.usage,
        )
    if st.settings.access_log:
        st.access_log.info(orjson.dumps(access_line(request, outcome, seconds)).decode())
    if chat and st.decisions is not None and outcome.route:
        st.decisions.remember(st.store, outcome)
