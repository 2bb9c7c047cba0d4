"""The policy reference, generated from the schema's field descriptions, defaults and bounds."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from router.policy.schema import (
    Auth,
    Budget,
    CircuitBreaker,
    ClassifierSettings,
    Cooldown,
    Costs,
    CustomTask,
    EndpointSpec,
    FrontierCluster,
    HealthCheck,
    LatencyBudget,
    LoadBalancing,
    Match,
    ModelAlias,
    OutlierDetection,
    PolicyFile,
    RequestLimits,
    ResponseCache,
    Route,
    Stickiness,
    Timeouts,
    VllmCluster,
)

SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Policy file (top level)", PolicyFile),
    ("Cluster, kind `vllm`", VllmCluster),
    ("Cluster, kind `frontier`", FrontierCluster),
    ("Endpoint (object form)", EndpointSpec),
    ("Timeouts", Timeouts),
    ("Circuit breaker", CircuitBreaker),
    ("Health check (vLLM)", HealthCheck),
    ("Outlier detection (vLLM)", OutlierDetection),
    ("Load balancing (vLLM)", LoadBalancing),
    ("Cooldown (frontier)", Cooldown),
    ("Latency budget", LatencyBudget),
    ("Stickiness (routed aliases)", Stickiness),
    ("Model alias", ModelAlias),
    ("Route", Route),
    ("Match", Match),
    ("Classifier", ClassifierSettings),
    ("Custom task", CustomTask),
    ("Auth", Auth),
    ("Costs", Costs),
    ("Budget", Budget),
    ("Response cache", ResponseCache),
    ("Request limits", RequestLimits),
)


_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "NoneType": "null"}


def type_name(tp: Any) -> str:
    """A reader's name for a field type: `list of string`, `number or null`, ..."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if isinstance(tp, type):
        return _SCALARS.get(tp.__name__, tp.__name__)
    return str(tp)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "`[]`" if info.default_factory is list else ("`{}`" if info.default_factory is dict else "(defaults)")
    if info.default is PydanticUndefined:
        return ""
    return f"`{info.default!r}`".replace("None", "null").replace("'", "")


def _bounds(info: FieldInfo) -> str:
    out = []
    for meta in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "min length")):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sym} {value}")
    return ", ".join(out)


def render_reference() -> str:
    lines = [
        "# Policy reference (version 1)",
        "",
        "Generated from `router/policy/schema.py` by `router policy reference`; do not edit by hand.",
        "Unknown keys are errors. Strings may use `${VAR}` or `${VAR:-default}` to read the environment.",
        "",
    ]
    for title, model in SECTIONS:
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        lines += [
            f"## {title}",
            "",
            doc,
            "",
            "| key | type | default | bounds | description |",
            "|---|---|---|---|---|",
        ]
        for name, info in model.model_fields.items():
            ann = type_name(info.annotation)
            desc = (info.description or "").replace("|", "\\|")
            lines.append(f"| `{info.alias or name}` | {ann} | {_default(info)} | {_bounds(info)} | {desc} |")
        lines.append("")
    return "\n".join(lines)
