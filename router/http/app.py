"""The app factory: ``create_app(settings)`` builds a proxy; each resource has its own cleanup context."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider

from router.accounting import economics_live
from router.accounting.prices import price_book
from router.admin import reload, replicas
from router.admin.decisions import DecisionLog
from router.classifier import startup
from router.http import handlers
from router.http.keys import ACCOUNTING, PIPELINE, STATE
from router.http.middleware import api_middleware
from router.pipeline.sequence import Pipeline, accounting_of
from router.policy.compile import load_policy
from router.redaction import redact_url
from router.serving import RouterState, Serving
from router.settings import Settings
from router.state.memory import MemoryStore
from router.state.redis import RedisStore
from router.state.resilient import ResilientStore
from router.telemetry.metrics import Metrics
from router.telemetry.metrics_push import MetricsPush
from router.telemetry.otlp_metrics import metrics_exporter_from_env
from router.telemetry.tracing import build_tracing
from router.tenancy.keys import load_keys
from router.upstream import health
from router.upstream.upstreams import EmulatedUpstreams, Upstreams, build_upstreams

if TYPE_CHECKING:
    from router.classifier.predict import ClassifierModel

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    tracer_provider: TracerProvider | None = None,
    classifier_model: ClassifierModel | None = None,
) -> web.Application:
    """Build the proxy. Raises :class:`~router.errors.PolicyError` if the policy does not load.

    ``classifier_model``: an already loaded encoder and heads (tests share one); otherwise the classifier's
    cleanup context loads them when ``settings.classifier`` is on.
    """
    env = dict(os.environ if env is None else env)
    policy = load_policy(settings.policies, env)
    prices = price_book(policy)
    keys = load_keys(settings.keys_file, settings.api_keys)
    if not keys.has_admin and not policy.auth.admin_without_key:
        log.warning("no admin key is configured: /v1/admin/* (router status, router usage) will answer 403")
    metrics = Metrics()
    state = RouterState(
        settings=settings,
        metrics=metrics,
        tracing=build_tracing(env, tracer_provider),
        serving=Serving(policy, Upstreams({}), prices, keys),
        env=env,
        classifier_model=classifier_model,
    )
    metrics.policy_loaded(policy.digest, time.time())
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[api_middleware])
    if settings.decision_log:
        state.decisions = DecisionLog(settings.state_prefix, settings.decision_log_ttl_s, settings.decision_log_max)
    # The same instruments over OTLP when an endpoint is configured (built here: a bad protocol fails start-up).
    exporter = metrics_exporter_from_env(env) if tracer_provider is None else None
    app[STATE] = state
    app[ACCOUNTING] = accounting = accounting_of(state)
    app[PIPELINE] = Pipeline(state, accounting)
    app.on_response_prepare.append(no_banner)
    app.cleanup_ctx.extend(
        [_tracing_ctx, _state_ctx, _classifier_ctx, _upstreams_ctx, _health_ctx, _watcher_ctx, _settled_ctx]
    )
    if exporter is not None:
        app.cleanup_ctx.insert(1, MetricsPush(exporter, metrics.registry, env).cleanup_ctx())
    app.router.add_post("/v1/chat/completions", handlers.chat_completions)
    app.router.add_post("/v1/route/explain", handlers.route_explain)
    app.router.add_get("/v1/models", handlers.list_models)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    if settings.admin_port is None:  # otherwise only the admin listener serves these
        app.router.add_get("/v1/admin/clusters", handlers.admin_clusters)
        app.router.add_get("/v1/admin/usage", handlers.admin_usage)
        app.router.add_get("/v1/admin/usage/verify", handlers.admin_usage_verify)
        app.router.add_get("/v1/admin/capacity", handlers.admin_capacity)
        app.router.add_get("/v1/admin/decisions", handlers.admin_decisions)
        app.router.add_get("/v1/admin/decisions/{request_id}", handlers.admin_decision)
        app.router.add_get("/metrics", handlers.metrics)
    return app


async def no_banner(request: web.Request, response: web.StreamResponse) -> None:
    """No ``Server: Python/3.11 aiohttp/x.y`` on answers: versions help only whoever looks for a known hole."""
    response.headers["Server"] = "hybrid-llm-router"


async def _tracing_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    app[STATE].tracing.shutdown()


async def _state_ctx(app: web.Application) -> AsyncIterator[None]:
    """The state store (Redis when ``ROUTER_REDIS_URL`` is set, else this process's memory) and the
    ledger's flusher; at shutdown the ledger is flushed before the store closes."""
    state = app[STATE]
    s = state.settings
    if s.redis_url:
        metrics = state.metrics

        def changed(up: bool) -> None:
            metrics.state_up.set(1 if up else 0)
            if not up:
                metrics.state_errors.inc()

        redis = RedisStore(s.redis_url, s.state_prefix, s.redis_timeout_ms / 1000)
        store = ResilientStore(redis, changed, on_local=metrics.budget_local.inc)
        await store.start()
        state.store = store
        log.info(
            "state store: Redis at %s (prefix %r)%s",
            redact_url(s.redis_url),
            s.state_prefix,
            "" if store.up else ", DOWN",
        )
    else:
        state.store = MemoryStore()
        log.info("state store: in memory (this process only; set ROUTER_REDIS_URL to share it)")
    accounting = app[ACCOUNTING]
    task = asyncio.create_task(accounting.run(), name="ledger-flush")
    econ = asyncio.create_task(
        economics_live.watch(
            lambda: state.store, lambda: state.serving.policy, state.metrics.economics.publish, s.economics_interval_s
        ),
        name="economics",
    )
    name = replicas.replica_name(s.port)
    shared = asyncio.create_task(
        replicas.publish(lambda: state.store, s.state_prefix, name, lambda: handlers.cluster_view(state)),
        name="replica-view",
    )
    try:
        yield
    finally:
        shared.cancel()
        econ.cancel()
        task.cancel()
        await accounting.flush()
        if state.decisions is not None:
            await state.decisions.drain()
        await state.store.close()


async def _classifier_ctx(app: web.Application) -> AsyncIterator[None]:
    """The classifier, loaded once per process when the policy can use it (see ``startup.start``)."""
    state = app[STATE]
    await startup.start(state)
    try:
        yield
    finally:
        if state.classifier is not None:
            await state.classifier.stop()
            state.classifier = None


async def _upstreams_ctx(app: web.Application) -> AsyncIterator[None]:
    """One shared client session (keep-alive) and the clusters built on it; emulators if asked for."""
    state = app[STATE]
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    state.session = aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",))
    try:
        policy = state.serving.policy
        emulated = (
            await state.fleet.ensure(policy, state.env) if state.settings.emulate_missing else EmulatedUpstreams()
        )
        upstreams = await asyncio.to_thread(
            build_upstreams, policy, state.session, emulated, None, state.env, state.litellm_loop
        )
        state.serving = replace(state.serving, upstreams=upstreams)
        state.metrics.watch_clusters(lambda: state.serving.upstreams.gauges())
        yield
    finally:
        await state.session.close()
        await state.fleet.stop()
        await asyncio.to_thread(state.litellm_loop.stop)


async def _health_ctx(app: web.Application) -> AsyncIterator[None]:
    """Active health checks and ``/metrics`` scrapes of every vLLM endpoint, on each cluster's intervals."""
    state = app[STATE]
    assert state.session is not None
    checker = health.HealthChecker(state.session, meter=app[ACCOUNTING].ledger)
    await checker.check_all(state.serving.upstreams)
    task = asyncio.create_task(checker.run(lambda: state.serving.upstreams), name="health-checks")
    yield
    task.cancel()
    await checker.stop()


async def _settled_ctx(app: web.Application) -> AsyncIterator[None]:
    """Last of start-up: everything built so far is moved out of the garbage collector's view: with
    litellm and torch loaded a full collection of the start-up heap pauses the process for a few hundred
    milliseconds, and none of it is ever garbage. (The tokenizer is not loaded here: it costs 45 MB and is
    needed only for a stream that ends without usage; it loads then, in a worker thread.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _watcher_ctx(app: web.Application) -> AsyncIterator[None]:
    async for _ in reload.watch(app[STATE]):
        yield
