"""Serving the app: the API listener, the optional admin listener, socket time limits, graceful stop.

Time limits on client sockets (slow-loris and idle connections cost a file descriptor and memory each):

- ``idle_timeout_s`` is aiohttp's keep-alive timeout, which also runs from the moment a connection opens
  and while a request's headers are still arriving: a silent socket, a header sent a byte at a time, or an
  idle keep-alive connection is closed when it runs out;
- ``body_timeout_s`` bounds reading a request body once its headers are in (a chunked body with no end,
  a ``Content-Length`` larger than what is sent): the handler answers 408 and closes the connection
  (:func:`router.http.handlers.read_chat`).

The admin listener (``admin_port``) serves ``/metrics``, ``/readyz`` with details, ``/healthz`` and the
admin API from the same state, so operators' tools need not share a port with tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from router.http import handlers
from router.http.app import no_banner
from router.http.keys import ACCOUNTING, ADMIN_LISTENER, PIPELINE, STATE
from router.http.middleware import api_middleware
from router.serving import RouterState
from router.settings import Settings

log = logging.getLogger("router")
LINGER_S = 2.0


def create_admin_app(app: web.Application) -> web.Application:
    """The admin listener's app: the operators' endpoints over ``app``'s state (``app`` owns the resources)."""
    admin = web.Application(middlewares=[api_middleware])
    admin[STATE] = app[STATE]
    admin[PIPELINE] = app[PIPELINE]
    admin[ACCOUNTING] = app[ACCOUNTING]
    admin[ADMIN_LISTENER] = True
    admin.on_response_prepare.append(no_banner)
    admin.router.add_get("/healthz", handlers.healthz)
    admin.router.add_get("/readyz", handlers.readyz)
    admin.router.add_get("/metrics", handlers.metrics)
    admin.router.add_get("/v1/admin/clusters", handlers.admin_clusters)
    admin.router.add_get("/v1/admin/usage", handlers.admin_usage)
    admin.router.add_get("/v1/admin/usage/verify", handlers.admin_usage_verify)
    admin.router.add_get("/v1/admin/capacity", handlers.admin_capacity)
    admin.router.add_get("/v1/admin/decisions", handlers.admin_decisions)
    admin.router.add_get("/v1/admin/decisions/{request_id}", handlers.admin_decision)
    return admin


def _runner(app: web.Application, settings: Settings) -> web.AppRunner:
    return web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=settings.idle_timeout_s,
        # After an answer sent before its request body was read (a 408, a 401 on an upload), unread body is
        # drained for this long before the connection is closed (aiohttp: 10 s).
        lingering_time=LINGER_S,
        shutdown_timeout=settings.drain_timeout_s,
    )


async def serve(app: web.Application, settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain: on SIGTERM first ``drain_notice_s`` of ``/readyz`` 503 while
    still serving (load balancers move away), then stop accepting and let requests in flight finish
    (``drain_timeout_s``), then clean up. SIGINT, or a second signal, skips the notice."""
    runners = [_runner(app, settings)]
    if settings.admin_port is not None:
        runners.append(_runner(create_admin_app(app), settings))
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        if stop.is_set() or sig == signal.SIGINT:
            hurry.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        for runner in runners:
            await runner.setup()
        main = web.TCPSite(runners[0], settings.host, settings.port, shutdown_timeout=settings.drain_timeout_s)
        await main.start()
        log.info("serving the API on http://%s:%d", settings.host, _port(main))
        if len(runners) > 1:
            admin = web.TCPSite(runners[1], settings.host, settings.admin_port)
            await admin.start()
            log.info("serving the admin endpoints on http://%s:%d", settings.host, _port(admin))
        await stop.wait()
        await _drain(app[STATE], settings.drain_notice_s, hurry)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        state = app[STATE]
        if state.draining:
            left = state.in_flight
            log.info(
                "stopped: %s", "every request finished" if not left else f"{left} request(s) cut at the drain limit"
            )


async def _drain(state: RouterState, notice_s: float, hurry: asyncio.Event) -> None:
    state.draining = True
    if notice_s > 0 and not hurry.is_set():
        log.info("draining: /readyz answers 503 for %.0f s while requests are still served", notice_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hurry.wait(), notice_s)
    log.info("stopping: no new connections; %d request(s) in flight may finish", state.in_flight)


def _port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the listening server private; port 0 needs the real one
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0
