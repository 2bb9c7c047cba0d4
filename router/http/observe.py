"""What a request leaves behind for the people who run the proxy: its SERVER span's attributes (bounded route
names, the HTTP conventions, what the router decided) and its access-log line."""

from __future__ import annotations

from aiohttp import web
from opentelemetry.trace import Span, Status, StatusCode

from router.telemetry import names as n
from router.types import RequestOutcome


def route_of(request: web.Request) -> str:
    """``http.route``: the matched route's template, or ``unmatched`` (a path no route serves must not
    become a span name or attribute of its own: unbounded cardinality)."""
    if request.match_info.http_exception is not None:
        return n.UNMATCHED_ROUTE
    info = request.match_info.route.resource
    return info.canonical if info is not None else n.UNMATCHED_ROUTE


def span_attributes(request: web.Request, outcome: RequestOutcome, span: Span) -> None:
    attributes: dict[str, str | int] = {
        n.HTTP_REQUEST_METHOD: request.method,
        n.URL_PATH: request.path,
        n.URL_SCHEME: request.scheme,
        n.HTTP_ROUTE: route_of(request),
        n.HTTP_RESPONSE_STATUS_CODE: outcome.status,
        n.ROUTER_REQUEST_ID: outcome.request_id,
    }
    host = request.url.host
    if host:
        attributes[n.SERVER_ADDRESS] = host
        if request.url.port is not None:
            attributes[n.SERVER_PORT] = request.url.port
    if request.remote:
        attributes[n.CLIENT_ADDRESS] = request.remote
    agent = request.headers.get("User-Agent")
    if agent:
        attributes[n.USER_AGENT_ORIGINAL] = agent[:256]
    # What the router decided, only once it decided it (a 400 or 404 has no route, cluster or tenant).
    for key, value in (
        (n.ROUTER_ROUTE, outcome.route),
        (n.ROUTER_RULE, outcome.rule),
        (n.ROUTER_POLICY, outcome.policy if outcome.route else ""),
        (n.ROUTER_CLUSTER, outcome.cluster),
        (n.ROUTER_REASON, outcome.reason),
        (n.ROUTER_ALIAS, outcome.alias),
        (n.ROUTER_TENANT, outcome.tenant),
    ):
        if value:
            attributes[key] = value
    span.set_attributes(attributes)
    if outcome.key_name is not None:
        span.set_attribute(n.ROUTER_KEY_NAME, outcome.key_name)
    if outcome.cost_usd is not None:
        span.set_attribute(n.ROUTER_COST_USD, outcome.cost_usd)
    if outcome.baseline_cost_usd is not None:
        span.set_attribute(n.ROUTER_BASELINE_COST_USD, outcome.baseline_cost_usd)
    if outcome.cache is not None:
        span.set_attribute(n.ROUTER_CACHE, outcome.cache)
    if outcome.status >= 500 or outcome.error_type:
        span.set_attribute(n.ERROR_TYPE, outcome.error_type or str(outcome.status))
    if outcome.status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def access_line(request: web.Request, outcome: RequestOutcome, seconds: float) -> dict[str, object]:
    """One JSON line per request (docs/telemetry.md lists the fields)."""
    return {
        **outcome.decided(),  # shared with the decision log: classification, rule, every attempt, errors, cost
        "method": request.method,
        "path": request.path,
        "upstream_model": outcome.upstream_model or None,
        "stream": outcome.stream,
        "input_tokens": outcome.usage.input_tokens,
        "output_tokens": outcome.usage.output_tokens,
        "latency_ms": round(seconds * 1000, 3),
        "ttft_ms": round(outcome.ttft_s * 1000, 3) if outcome.ttft_s is not None else None,
        "attempts": len(outcome.attempts),
        "endpoint": outcome.endpoint or (outcome.attempts[-1].endpoint if outcome.attempts else None),
        "hedge": outcome.hedge,
        "key": outcome.key_name,
        "cache": outcome.cache,
    }
