"""Schema errors in the policy's words: what the value must be, not pydantic's phrasing; and "did you mean"
for a misspelt key, from the keys allowed at that place."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

_KINDS = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
}


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}" + (
            " (remove the quotes)"
            if value.strip().lstrip("-").replace(".", "", 1).isdigit() or value in ("true", "false")
            else ""
        )
    if isinstance(value, bool):
        return f"the flag {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


def _n(value: Any) -> str:
    """A bound as written: 0, not 0.0."""
    return f"{value:g}" if isinstance(value, float) else str(value)


# A bound the value passed: the words for it, and the key of the bound in the error's context.
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def in_policy_words(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, not {_shown(err.get('input'))}"
    if kind == "too_short":
        return "must not be empty (leave the key out to mean no condition)"
    if kind == "too_long":
        return f"has too many items (at most {ctx.get('max_length')})"
    if kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        return f"must be {words} {_n(ctx.get(key))}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"is not a valid name (letters, digits and {'_.:/-'} only; pattern {ctx.get('pattern')})"
    return str(err["msg"]).removeprefix("Value error, ")


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold (through Optional, unions, lists, dicts, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            out += _models(arg)
    return out


def keys_at(root: type[BaseModel], loc: Sequence[int | str]) -> set[str]:
    """The keys allowed in the mapping at ``loc`` (the location of an unknown key, without the key)."""
    models: list[type[BaseModel]] = [root]
    for part in loc:
        nxt: list[type[BaseModel]] = []
        for m in models:
            field = _fields(m).get(str(part))
            if field is not None:
                nxt += _models(field.annotation)
        # A list index or a free-form key (a cluster's name) stays at the models the container holds.
        models = nxt or models
    return {name for m in models for name in _fields(m)}


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key a policy writes (the alias where there is one: `not`, `any`, `all`)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def did_you_mean(key: str, allowed: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.7)
    return f"; did you mean `{close[0]}`?" if close else ""
