"""The shared base of the policy schema: strict models and the name pattern."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
EMULATED = "emulated"
DEFAULT_TIER = "default"  # the tier of endpoints that name none


class _Strict(BaseModel):
    # strict: a YAML string is not quietly turned into a number or a flag (`priority: "60"` is an error).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
