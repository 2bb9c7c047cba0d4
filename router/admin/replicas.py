"""Every replica's view of the clusters, through the shared state store, so one admin call sees them all.

Each replica pushes its ``GET /v1/admin/clusters`` document, with its name and the time, to one capped
list every ``EVERY_S`` (``router status --all``, ``GET /v1/admin/clusters?replicas=all``). A reader keeps
the newest document of each replica heard from within ``STALE_AFTER`` pushes: a replica that stopped
(scaled in, crashed) drops out by itself. With the in-memory store a replica sees only itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

import orjson

from router.errors import StateUnavailable
from router.state.base import StateStore

log = logging.getLogger(__name__)

EVERY_S = 5.0
STALE_AFTER = 3  # pushes missed before a replica is taken as gone
CAP = 512  # entries kept: a hundred replicas' last five pushes


def key(prefix: str) -> str:
    return f"{prefix}replicas"


def replica_name(port: int) -> str:
    """This replica's name: its host (the pod's name on Kubernetes) and port (a random tag for port 0)."""
    return f"{socket.gethostname()}:{port or secrets.token_hex(3)}"


async def publish(
    store: Callable[[], StateStore],
    prefix: str,
    name: str,
    view: Callable[[], dict[str, Any]],
    every_s: float = EVERY_S,
) -> None:
    """Push this replica's view every ``every_s`` until cancelled; while the store is away, views wait."""
    while True:
        doc = {"replica": name, "at": round(time.time(), 3), **view()}
        try:
            await store().log_push(key(prefix), orjson.dumps(doc), CAP, STALE_AFTER * every_s)
        except StateUnavailable:
            log.debug("replica view not shared: state store unavailable")
        await asyncio.sleep(every_s)


async def views(store: StateStore, prefix: str, now: float, every_s: float = EVERY_S) -> dict[str, dict[str, Any]]:
    """The newest view of each replica heard from recently, by replica name (sorted)."""
    out: dict[str, dict[str, Any]] = {}
    for raw in await store.log_read(key(prefix), CAP):  # newest first
        doc = orjson.loads(raw)
        name = doc.get("replica")
        if isinstance(name, str) and name not in out and now - float(doc.get("at", 0)) <= STALE_AFTER * every_s:
            out[name] = doc
    return dict(sorted(out.items()))
