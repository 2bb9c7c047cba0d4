"""Everything one running proxy holds, created by the app factory and owned by the app."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from router.policy.compile import Policy
from router.runtime.clusters import Upstreams
from router.runtime.devstack import EmulatorFleet
from router.settings import Settings
from router.telemetry.metrics import Metrics
from router.telemetry.tracing import Tracing


@dataclass
class Serving:
    """The policy and the clusters built from it: swapped together, atomically, on reload."""

    policy: Policy
    upstreams: Upstreams


@dataclass
class RouterState:
    settings: Settings
    metrics: Metrics
    tracing: Tracing
    serving: Serving
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    session: aiohttp.ClientSession | None = None
    fleet: EmulatorFleet = field(default_factory=EmulatorFleet)
    access_log: logging.Logger = field(default_factory=lambda: logging.getLogger("router.access"))
    last_reload_error: str | None = None
