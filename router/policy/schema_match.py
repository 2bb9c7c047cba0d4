"""A rule's conditions (``match``), with ``any:``/``all:``/``not:`` blocks that nest the same conditions.

Each block also carries its compiled text patterns (``regex``, ``keywords``), so the engine evaluates a
nested block exactly like a rule's own conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Self

from pydantic import Field, PrivateAttr, field_validator, model_validator

from router.policy.schema_base import _Strict

KeyPath = tuple[str | int, ...]


def keyword_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """Whole words or phrases, case-insensitive; inner whitespace matches any run of whitespace."""
    parts = sorted((r"\s+".join(map(re.escape, w.split())) for w in words), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


class Match(_Strict):
    """Conditions of a rule (all set ones must hold; unset ones match anything); `any`/`all`/`not` nest blocks.

    A block under `any`, `all` or `not` takes the same keys as `match`, nested as deep as needed."""

    models: list[str] | None = Field(None, min_length=1, description="Requested aliases this rule applies to.")
    tenants: list[str] | None = Field(None, min_length=1, description="Tenants this rule applies to.")
    headers: dict[str, str] | None = Field(
        None,
        min_length=1,
        description="Request headers (case-insensitive names) and the exact value each must have; "
        "the value `*` only requires the header to be present.",
    )
    min_prompt_tokens: int | None = Field(None, ge=0, le=10_000_000, description="Estimated prompt tokens ≥ this.")
    max_prompt_tokens: int | None = Field(None, ge=0, le=10_000_000, description="Estimated prompt tokens ≤ this.")
    has_tools: bool | None = Field(None, description="The request carries `tools` (or `functions`) or not.")
    has_images: bool | None = Field(None, description="A message carries an image part or not.")
    stream: bool | None = Field(None, description="The request is streaming or not.")
    tasks: list[str] | None = Field(
        None,
        min_length=1,
        description="Classified task is one of these (the twelve trained labels or the policy's own "
        "`classifier.tasks`). Holds only when the request was classified with confidence at least "
        "`min_task_confidence` (default: `classifier.min_confidence`); a request that was not "
        "classified (encoder failure) never matches a task condition.",
    )
    min_task_confidence: float | None = Field(
        None, ge=0, le=1, description="With `tasks`: the confidence the task needs; overrides the policy default."
    )
    max_task_confidence: float | None = Field(
        None, ge=0, le=1, description="Task confidence ≤ this (for rules about uncertain classifications)."
    )
    min_complexity: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Complexity ≥ this: the estimated probability that a small model falls short. "
        "See docs/classification.md for how to pick it from a target share of frontier calls.",
    )
    max_complexity: float | None = Field(None, ge=0, le=1, description="Complexity ≤ this.")
    regex: str | None = Field(
        None,
        min_length=1,
        description="A Python regular expression searched (not anchored) in the last user message; "
        "prefix it with `(?i)` for case-insensitive.",
    )
    keywords: list[str] | None = Field(
        None,
        min_length=1,
        description="Any of these words or phrases occurs in the last user message (case-insensitive, whole words).",
    )

    any_: list[Match] | None = Field(
        None,
        alias="any",
        min_length=1,
        description="Blocks of conditions (each like `match`); at least one must hold. One rule for an intent "
        "that several conditions express (`any: [{tasks: [coding]}, {keywords: [stack trace]}]`).",
    )
    all_: list[Match] | None = Field(
        None,
        alias="all",
        min_length=1,
        description="Blocks of conditions that must all hold (to AND two `any` blocks, or two of one condition).",
    )
    not_: Match | None = Field(
        None, alias="not", description="A block of conditions that must not hold (`not: {tenants: [internal]}`)."
    )
    _regex: re.Pattern[str] | None = PrivateAttr(None)
    _keywords: re.Pattern[str] | None = PrivateAttr(None)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("keywords")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not w.strip() for w in value):
            raise ValueError("keywords must not be empty")
        return value

    @field_validator("headers")
    @classmethod
    def _lower(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else {k.lower(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _range(self) -> Self:
        lo, hi = self.min_prompt_tokens, self.max_prompt_tokens
        for lo_name, hi_name in (
            ("min_prompt_tokens", "max_prompt_tokens"),
            ("min_task_confidence", "max_task_confidence"),
            ("min_complexity", "max_complexity"),
        ):
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{lo_name} is greater than {hi_name}")
        if self.min_task_confidence is not None and self.tasks is None:
            raise ValueError("min_task_confidence needs `tasks`")
        return self

    @model_validator(mode="after")
    def _patterns(self) -> Self:
        self._regex = re.compile(self.regex) if self.regex is not None else None
        self._keywords = keyword_pattern(self.keywords) if self.keywords is not None else None
        return self

    @property
    def regex_pattern(self) -> re.Pattern[str] | None:
        return self._regex

    @property
    def keyword_pattern(self) -> re.Pattern[str] | None:
        return self._keywords

    @property
    def composed(self) -> bool:
        return self.any_ is not None or self.all_ is not None or self.not_ is not None

    def blocks(self, path: KeyPath = ("match",)) -> Iterator[tuple[Match, KeyPath]]:
        """This block and every nested one, each with its key path (for checks that name the line)."""
        yield self, path
        for key, subs in (("any", self.any_), ("all", self.all_)):
            for i, sub in enumerate(subs or ()):
                yield from sub.blocks((*path, key, i))
        if self.not_ is not None:
            yield from self.not_.blocks((*path, "not"))

    def header_names(self) -> set[str]:
        return {name for block, _ in self.blocks() for name in block.headers or ()}

    @property
    def uses_classifier(self) -> bool:
        return any(
            v is not None
            for block, _ in self.blocks()
            for v in (block.tasks, block.max_task_confidence, block.min_complexity, block.max_complexity)
        )
