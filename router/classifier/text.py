"""Exactly what the classifier reads from a request (pure; no I/O).

Two views of the conversation, both from the head of the system prompt, the last user message (the task
is what the last user turn asks for) and, in a multi-turn request, the head of the turn before it (the
context: "another one", "now in French" or a question about a document pasted earlier only mean something
beside it):

- ``embed_text``, what the sentence encoder embeds: the system prompt's first ``EMBED_SYSTEM`` characters
  and the user turn, a long one cut to its first ``EMBED_HEAD`` and last ``EMBED_TAIL`` characters, because
  instructions sit at the start ("Summarize this: ...") or at the end ("... Translate the above.") of a
  pasted document. The encoder also stops at ``MAX_WORD_PIECES`` word pieces: its cost grows with the
  length, and 64 pieces keep a 200-token prompt within the latency budget (docs/classification.md). The
  context comes last, so it is read when the last turn is short and cut off when the last turn says enough.
- ``text``, what the lexical features hash (cheap, so longer): ``SYSTEM_CHARS`` of system prompt and the
  user turn cut to ``HEAD_CHARS`` + ``TAIL_CHARS``.
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
EMBED_SYSTEM = 80
EMBED_HEAD = 150
EMBED_TAIL = 60
MAX_WORD_PIECES = 64
CONTEXT_CHARS = 300
EMBED_CONTEXT = 160
INSTRUCTION_HEAD = 160
INSTRUCTION_TAIL = 120

_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|\bimport |#include|=>|\bfunction\b", re.M)
_OPTIONS = re.compile(r"(^|\n)\s*[A-D][.)]\s")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")


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


def _cut(system: str, user: str, system_chars: int, head: int, tail: int, context: str = "") -> str:
    if len(user) > head + tail:
        user = user[:head] + " … " + user[-tail:]
    system = system[:system_chars]
    text = f"{system}\n{user}" if system else user
    return f"{text}\n« {context} »" if context else text


@dataclass(frozen=True, slots=True)
class PromptView:
    """The parts of a conversation the classifier looks at."""

    system: str
    user: str
    context: str = ""  # the head of the message before the last user turn, in a multi-turn request

    @property
    def text(self) -> str:
        return _cut(self.system, self.user, SYSTEM_CHARS, HEAD_CHARS, TAIL_CHARS, self.context[:CONTEXT_CHARS])

    @property
    def embed_text(self) -> str:
        return _cut(self.system, self.user, EMBED_SYSTEM, EMBED_HEAD, EMBED_TAIL, self.context[:EMBED_CONTEXT])

    @property
    def instruction_text(self) -> str:
        """Where instructions sit: the system prompt head and the first and last words of the user turn."""
        user = self.user
        if len(user) > INSTRUCTION_HEAD + INSTRUCTION_TAIL:
            user = user[:INSTRUCTION_HEAD] + " " + user[-INSTRUCTION_TAIL:]
        return f"{self.system[:SYSTEM_CHARS]} {user}"


def _role_text(m: Any) -> tuple[Any, str]:
    get = m.get if isinstance(m, dict) else lambda key, default=None: getattr(m, key, default)
    return get("role"), _content_text(get("content"))


def prompt_view(messages: Sequence[Any]) -> PromptView:
    """From OpenAI-format messages (dicts or objects with ``role``/``content``).

    The context is the user turn before the last one: it says what the conversation is about, where an
    assistant turn only answers it.
    """
    turns = [_role_text(m) for m in messages]
    system = next((text for role, text in turns if role in ("system", "developer")), "")
    users = [text for role, text in turns if role == "user"]
    return PromptView(
        system=system,
        user=users[-1] if users else "",
        context=users[-2][:CONTEXT_CHARS] if len(users) >= 2 else "",
    )


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
    # Word-problem shape (complexity: within GSM8K-style prompts these rank difficulty beyond length)
    "distinct_numbers",
    "has_decimal",
    "has_money",
    "has_percent",
    "log_max_number",
    "words_per_sentence",
)


def structure(view: PromptView) -> list[float]:
    """Cheap structural signals, each roughly in [0, 1]; names in ``STRUCTURE_NAMES``."""
    u = view.user
    n = max(1, len(u))
    lines = u.count("\n") + 1
    words = max(1, len(u.split()))
    numbers = _NUMBER.findall(u)
    return [
        min(1.0, math.log1p(len(u)) / 10),
        min(1.0, math.log1p(lines) / 6),
        1.0 if (len(u) > 250 and ("\n" in u or ":" in u[:200])) or len(view.context) > 250 else 0.0,
        min(1.0, len(_CODE.findall(u)) / 10),
        1.0 if len(_OPTIONS.findall(u)) >= 3 else 0.0,
        1.0 if u.rstrip().endswith("Answer:") else 0.0,
        min(1.0, len(numbers) / words * 3),
        min(1.0, sum(1 for c in u if ord(c) > 127) / n * 3),
        1.0 if view.system else 0.0,
        1.0 if "?" in u[-200:] else 0.0,
        min(1.0, len(set(numbers)) / 12),
        1.0 if any("." in x for x in numbers) else 0.0,
        1.0 if "$" in u else 0.0,
        1.0 if "%" in u else 0.0,
        min(1.0, math.log1p(max((float(x.replace(",", "")) for x in numbers), default=0.0)) / 15),
        min(1.0, words / max(1, len(_SENTENCE_END.findall(u))) / 40),
    ]
