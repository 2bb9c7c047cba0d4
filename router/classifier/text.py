"""Exactly what the classifier reads from a request (pure; no I/O).

The embedded text is the head of the system prompt (up to ``SYSTEM_CHARS`` characters) followed by the last
user message; a long user message is cut to its first ``HEAD_CHARS`` and last ``TAIL_CHARS`` characters,
because instructions sit at the start ("Summarize this: ...") or at the end ("... Translate the above.") of
a pasted document. all-MiniLM-L6-v2 reads at most 256 word pieces (~1,000 characters of English) and
truncates the rest. Earlier turns are not read: the task is what the last user turn asks for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SYSTEM_CHARS = 300
HEAD_CHARS = 700
TAIL_CHARS = 300
INSTRUCTION_HEAD = 160
INSTRUCTION_TAIL = 120

_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|\bimport |#include|=>|\bfunction\b", re.M)
_OPTIONS = re.compile(r"(^|\n)\s*[A-D][.)]\s")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _part_text(part: Any) -> str:
    """The text of one content part: a dict (JSON) or an object with ``type``/``text`` (parsed request)."""
    get = part.get if isinstance(part, dict) else lambda key, default=None: getattr(part, key, default)
    text = get("text")
    return text if get("type") == "text" and isinstance(text, str) else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in map(_part_text, content) if t)
    return ""


@dataclass(frozen=True, slots=True)
class PromptView:
    """The parts of a conversation the classifier looks at."""

    system: str
    user: str

    @property
    def embed_text(self) -> str:
        user = self.user
        if len(user) > HEAD_CHARS + TAIL_CHARS:
            user = user[:HEAD_CHARS] + " … " + user[-TAIL_CHARS:]
        system = self.system[:SYSTEM_CHARS]
        return f"{system}\n{user}" if system else user

    @property
    def instruction_text(self) -> str:
        """Where instructions sit: the system prompt head and the first and last words of the user turn."""
        user = self.user
        if len(user) > INSTRUCTION_HEAD + INSTRUCTION_TAIL:
            user = user[:INSTRUCTION_HEAD] + " " + user[-INSTRUCTION_TAIL:]
        return f"{self.system[:SYSTEM_CHARS]} {user}"


def prompt_view(messages: Sequence[Any]) -> PromptView:
    """From OpenAI-format messages (dicts or objects with ``role``/``content``)."""
    system, user = "", ""
    for m in messages:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = _content_text(content)
        if role in ("system", "developer") and not system:
            system = text
        elif role == "user":
            user = text
    return PromptView(system=system, user=user)


STRUCTURE_NAMES = (
    "log_chars",
    "log_lines",
    "has_passage",
    "code_density",
    "has_options",
    "ends_answer",
    "number_density",
    "non_ascii",
    "has_system",
    "question_mark",
)


def structure(view: PromptView) -> list[float]:
    """Cheap structural signals, each roughly in [0, 1]; names in ``STRUCTURE_NAMES``."""
    u = view.user
    n = max(1, len(u))
    lines = u.count("\n") + 1
    words = max(1, len(u.split()))
    return [
        min(1.0, math.log1p(len(u)) / 10),
        min(1.0, math.log1p(lines) / 6),
        1.0 if (len(u) > 250 and ("\n" in u or ":" in u[:200])) else 0.0,
        min(1.0, len(_CODE.findall(u)) / 10),
        1.0 if len(_OPTIONS.findall(u)) >= 3 else 0.0,
        1.0 if u.rstrip().endswith("Answer:") else 0.0,
        min(1.0, len(_NUMBER.findall(u)) / words * 3),
        min(1.0, sum(1 for c in u if ord(c) > 127) / n * 3),
        1.0 if view.system else 0.0,
        1.0 if "?" in u[-200:] else 0.0,
    ]
