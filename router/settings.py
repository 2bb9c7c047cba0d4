"""Process settings: from ``ROUTER_*`` environment variables, overridden by command-line flags.

The routing itself lives in policy files; these are the knobs of the process that serves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.errors import PolicyError, PolicyIssue


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: Path = Field(Path("policies"), description="A policy file or a directory of them.")
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in containers).")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on (0 picks a free one).")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024, description="Largest request body; larger gets 413."
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send its whole request body once the headers are in (a body that "
        "trickles or stops short gets a 408 and the connection is closed).",
    )
    idle_timeout_s: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds a connection may sit idle, or spend sending a request's headers, before the "
        "server closes it (a silent socket, a header sent a byte at a time, an idle keep-alive).",
    )
    admin_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="A second listener for operators, on the same host: `/metrics`, `/readyz` with details, "
        "`/healthz` and the admin API. When set, the main port no longer serves `/metrics` and `/v1/admin/*`. "
        "Do not expose it beyond the operators' network.",
    )
    emulate_missing: bool = Field(
        False,
        description="Serve unconfigured upstreams (endpoints `emulated`, frontier clusters without an API "
        "key) from local emulators. For the quick start and demos; never in production.",
    )
    keys_file: str | None = Field(
        None, description="YAML file of hashed API keys (router/tenancy/keys.py); re-read on every policy reload."
    )
    api_keys: str | None = Field(None, description="More hashed keys: comma-separated `tenant:sha256[:admin]`.")
    redis_url: str | None = Field(
        None,
        description="Redis for state shared by proxy replicas (budgets, ledger, cache), e.g. "
        "`redis://127.0.0.1:6379/0`. Unset: in-memory state for this process alone.",
    )
    state_prefix: str = Field(
        "router:", min_length=1, max_length=100, description="Prefix of every key the router writes in Redis."
    )
    redis_timeout_ms: float = Field(
        1000.0,
        gt=0,
        le=60_000,
        description="Per-command Redis timeout; a miss counts as Redis unreachable (budgets then follow their "
        "`on_state_unavailable`). A refused connection is noticed at once, whatever this says.",
    )
    capture_content: bool = Field(
        False, description="Put prompts and completions on spans (gen_ai.input/output.messages). Off: never."
    )
    reload_interval_s: float = Field(
        2.0, ge=0, le=3600, description="Seconds between policy file change checks (0: only on SIGHUP)."
    )
    economics_interval_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds between reads of the shared ledger into the pool economics gauges "
        "(router_pool_*, router_route_*_usd_per_1k_tokens).",
    )
    decision_log: bool = Field(
        False,
        description="Keep each request's decision (classification, rule, route, targets, every attempt) in the "
        "state store for `decision_log_ttl_s`, for GET /v1/admin/decisions/{request_id}. Prompts only with "
        "content capture on.",
    )
    decision_log_ttl_s: float = Field(3600.0, gt=0, le=30 * 86_400, description="How long decisions are kept.")
    decision_log_max: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="The newest decisions kept in order for GET /v1/admin/decisions (and `router decisions "
        "export`, traffic for `router policy diff`); older ones stay readable by id until their TTL.",
    )
    drain_notice_s: float = Field(
        5.0,
        ge=0,
        le=600,
        description="On SIGTERM, seconds of answering `/readyz` with 503 while still serving, so load balancers "
        "stop sending before the listener closes (SIGINT, or a second signal, skips it).",
    )
    drain_timeout_s: float = Field(30.0, ge=0, le=3600, description="Seconds to let streams finish on shutdown.")
    classifier: bool = Field(
        True,
        description="Load the encoder and classify requests on rule-routed aliases (policy permitting). Off: "
        "rules with task or complexity conditions never match.",
    )
    classifier_batch: int = Field(32, ge=1, le=256, description="Most texts per encoder forward pass.")
    classifier_wait_ms: float = Field(
        2.0, ge=0, le=100, description="How long a lone request waits for others to share its forward pass."
    )
    classifier_cache: int = Field(4096, ge=0, le=1_000_000, description="Embeddings kept in the LRU cache.")
    classifier_timeout_ms: float = Field(
        1000.0, gt=0, le=60_000, description="Classification slower than this falls back to rules without it."
    )
    encoder_threads: int = Field(0, ge=0, le=64, description="Torch threads for the encoder (0: torch's default).")
    access_log: bool = Field(True, description="Write one JSON access-log line per request.")
    log_level: str = Field("INFO", description="Python logging level.")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Read ``ROUTER_<FIELD>`` variables, then apply non-None overrides (command-line flags)."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(f"ROUTER_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = raw
        if env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").lower() == "true":
            values.setdefault("capture_content", True)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            issues = [
                PolicyIssue("settings", None, f"ROUTER_{str(e['loc'][0]).upper()}", e["msg"]) for e in exc.errors()
            ]
            raise PolicyError(issues) from None
