"""HTTP handlers: the chat endpoint, models, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from router.accounting import capacity, economics, usage, verify, windows
from router.accounting.ledger import served_label
from router.admin import decisions, replicas
from router.admin.clusters import status
from router.api.chat import ChatRequest, parse_chat_request
from router.errors import Forbidden, PayloadTooLarge, RequestTimeout
from router.http.keys import ACCOUNTING, OUTCOME, PIPELINE, PRINCIPAL, STATE
from router.http.middleware import is_operator, require_operator, router_headers
from router.offline.explain import document, tenant_view
from router.pipeline import sticky
from router.pipeline.sequence import Streaming
from router.policy.engine import explain
from router.serving import RouterState
from router.telemetry.metrics import CONTENT_TYPE


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


# Bodies up to this size are parsed on the event loop (tens of microseconds); larger ones in a worker
# thread, so that a multi-megabyte body never stalls the requests around it.
INLINE_PARSE_BYTES = 64 * 1024


async def read_chat(request: web.Request) -> ChatRequest:
    """The request body, read within the body time limit, parsed and checked against the policy's limits."""
    state = request.app[STATE]
    try:
        async with asyncio.timeout(state.settings.body_timeout_s):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = state.settings.max_body_bytes
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.") from None
    except TimeoutError:
        raise RequestTimeout(f"The request body did not arrive within {state.settings.body_timeout_s:g} s.") from None
    limits = state.serving.policy.limits
    if len(raw) <= INLINE_PARSE_BYTES:
        return parse_chat_request(raw, limits)
    return await asyncio.to_thread(parse_chat_request, raw, limits)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    outcome = request[OUTCOME]
    chat = await read_chat(request)
    pipeline = request.app[PIPELINE]
    result = await pipeline.open(chat, request.headers, outcome, request[PRINCIPAL])
    if not isinstance(result, Streaming):
        return web.Response(body=result.payload, content_type="application/json", headers=router_headers(outcome))
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            **router_headers(outcome),
        }
    )
    try:
        await resp.prepare(request)
    except BaseException:
        await pipeline.abandon(result)
        raise
    await pipeline.relay(result, resp.write, outcome)
    await resp.write_eof()
    return resp


async def route_explain(request: web.Request) -> web.Response:
    """The whole decision for a chat request, without calling any upstream: the full trace for operators,
    a tenant's view for others when the policy allows it (``auth.explain: tenants``), else 403."""
    policy = request.app[STATE].serving.policy
    operator = is_operator(request)
    if not operator and policy.auth.explain != "tenants":
        raise Forbidden("Route explanations need an admin key (the policy's `auth.explain` is `admin`).")
    chat = await read_chat(request)
    tenant = request[PRINCIPAL].tenant
    classified = await request.app[PIPELINE].classify(chat, request.headers, policy, tenant, force=True)
    trace = explain(policy, classified.features)
    doc = document(policy, classified, trace)
    if operator:  # the conversation's kept decision, if its alias sticks (the rules' own is above)
        pipeline, prefix = request.app[PIPELINE], request.app[STATE].settings.state_prefix
        kept = await sticky.explain_kept(pipeline.keeper, policy, chat, request.headers, tenant, prefix, trace.decision)
        if kept is not None:
            doc["sticky"] = kept
    return _json(doc if operator else tenant_view(doc))


async def list_models(request: web.Request) -> web.Response:
    policy = request.app[STATE].serving.policy
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "hybrid-llm-router"} for name in policy.models]
    return _json({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when a policy is loaded and at least one upstream is reachable. The status code is for every
    probe; the details (files, clusters, the last rejected reload) only for operators."""
    state = request.app[STATE]
    serving = state.serving
    clusters = {}
    reachable = False
    for name, c in serving.upstreams.clusters.items():
        if c.unavailable_reason is not None:
            clusters[name] = {"ready": False, "reason": c.unavailable_reason}
            continue
        clusters[name] = c.readiness(c.clock())
        reachable |= bool(clusters[name]["ready"])
    if state.classifier is not None:
        classifier = {"status": "failed" if state.classifier.failed else "ready", "error": state.classifier.failed}
    elif state.classifier_error is not None:
        classifier = {"status": "failed", "error": state.classifier_error}
    else:
        classifier = {"status": "disabled", "error": None}
    # A failed classifier does not make the proxy unready: requests still route, by rules without it.
    body = {
        "status": "ready" if reachable else "not ready",
        "policy": serving.policy.digest,
        "policy_files": list(serving.policy.files),
        "last_reload_error": state.last_reload_error,
        "classifier": classifier,
        # Not a readiness condition: budgets decide for themselves (fail-open or fail-closed) without it.
        "state_store": {"kind": state.store.name, "up": state.store.up},
        "clusters": clusters,
    }
    if state.draining:  # stopping: still serving, but load balancers should send nothing new
        body["status"] = "draining"
    code = 200 if reachable and not state.draining else 503
    return _json(body if is_operator(request) else {"status": body["status"]}, code)


async def admin_clusters(request: web.Request) -> web.Response:
    """Every cluster's endpoints, health, ejections, in-flight counts and latency estimates."""
    state = request.app[STATE]
    if request.query.get("replicas") == "all":  # every replica's latest view, through the shared store
        found = await replicas.views(state.store, state.settings.state_prefix, time.time())
        return _json({"object": "router.replicas", "replicas": found})
    return _json(cluster_view(state))


def cluster_view(state: RouterState) -> dict[str, Any]:
    """This replica's ``GET /v1/admin/clusters`` document (also what it shares with the others)."""
    return {"policy": state.serving.policy.digest, **status(state.serving.upstreams)}


async def admin_usage(request: web.Request) -> web.Response:
    """Spend, tokens, requests and savings by tenant, route and cluster for a UTC day or month."""
    q = request.query
    days = usage.days_for(q.get("window", "day"), q.get("date"), time.time())
    group_by = usage.group_keys(q.get("group_by"))
    await request.app[ACCOUNTING].flush()  # this replica's latest requests too
    store, now = request.app[STATE].store, time.time()
    ledgers = await store.ledger(days)
    served = await store.ledger([served_label(h) for d in days for h in windows.hours_of(d)])
    econ = economics.economics(request.app[STATE].serving.policy, ledgers, served, windows.covered_s(days, now))
    doc = usage.report(ledgers, group_by, econ)
    doc.update(window=q.get("window", "day"), days=[days[0], days[-1]])
    return _json(doc)


async def admin_capacity(request: web.Request) -> web.Response:
    """Replicas needed per pool and break-even volumes against the frontier, from the last days' ledger."""
    days, target = capacity.parameters(request.query.get("days"), request.query.get("target_utilisation"))
    await request.app[ACCOUNTING].flush()
    store, serving = request.app[STATE].store, request.app[STATE].serving
    hours = [w.label for w in windows.hours_back(time.time(), days * 24)]
    ledgers = await store.ledger(hours)
    served = await store.ledger([served_label(h) for h in hours])
    by_hour = {h: served[served_label(h)] for h in hours}
    return _json(capacity.plan(serving.policy, serving.prices, hours, ledgers, by_hour, target))


async def admin_decision(request: web.Request) -> web.Response:
    """What the router decided for a recent request, and everything it tried (the opt-in decision log)."""
    state = request.app[STATE]
    return _json(await decisions.lookup(state.store, state.settings.state_prefix, request.match_info["request_id"]))


async def admin_decisions(request: web.Request) -> web.Response:
    """The newest decisions kept (``?limit=N``, newest first): traffic for ``router policy diff``."""
    state = request.app[STATE]
    limit = decisions.limit_of(request.query.get("limit"), state.settings.decision_log_max)
    data = await decisions.recent(state.store, state.settings.state_prefix, limit)
    return _json({"object": "list", "data": data})


async def admin_usage_verify(request: web.Request) -> web.Response:
    """The budgets' invariant: every live counter against its settled use, its open leases and (daily
    money counters) the ledger, with the cause of any difference."""
    await request.app[ACCOUNTING].flush()  # this replica's latest requests too
    store = request.app[STATE].store
    now = time.time()
    snapshot = await store.snapshot(now)
    days = sorted({c.window for c in snapshot.counters if c.limit == "usd_per_day"})
    ledgers = await store.ledger(days) if days else {}
    return _json(verify.report(snapshot, verify.verify(snapshot, ledgers)))


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text (spend per tenant, endpoints, ...): operators only."""
    require_operator(request)
    return web.Response(body=request.app[STATE].metrics.render(), headers={"Content-Type": CONTENT_TYPE})
