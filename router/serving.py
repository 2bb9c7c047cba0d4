"""Everything one running proxy holds, created by the app factory and owned by the app."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from router.accounting.tokens import TokenCounter
from router.admin.decisions import DecisionLog
from router.emulator.devstack import EmulatorFleet
from router.policy.compile import Policy
from router.settings import Settings
from router.state.base import StateStore
from router.state.memory import MemoryStore
from router.telemetry.metrics import Metrics
from router.telemetry.tracing import Tracing
from router.tenancy.keys import KeyStore
from router.upstream.transport.background import BackgroundLoop
from router.upstream.upstreams import Upstreams

if TYPE_CHECKING:  # the classifier's modules are heavy; imported only when a policy uses them
    from router.accounting.prices import PriceBook
    from router.classifier.predict import ClassifierModel
    from router.classifier.service import ClassifierRuntime


@dataclass
class Serving:
    """The policy, the clusters built from it, their prices and the API keys: swapped together on reload."""

    policy: Policy
    upstreams: Upstreams
    prices: PriceBook
    keys: KeyStore


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
    # The classifier: None until loaded, or when disabled, or when loading failed (then the error).
    classifier: ClassifierRuntime | None = None
    classifier_error: str | None = None
    classifier_model: ClassifierModel | None = None  # injected (tests share one loaded model)
    store: StateStore = field(default_factory=MemoryStore)
    in_flight: int = 0  # chat requests being served (the drain waits for them)
    decisions: DecisionLog | None = None  # the opt-in decision log (settings.decision_log)
    draining: bool = False  # a stop was asked for: /readyz answers 503 so load balancers move away
    tokens: TokenCounter = field(default_factory=TokenCounter)
    # litellm's own event loop, in a thread (router.upstream.transport.background), started when a policy needs it.
    litellm_loop: BackgroundLoop = field(default_factory=lambda: BackgroundLoop("litellm"))
