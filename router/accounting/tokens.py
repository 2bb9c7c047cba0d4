"""Token counts for answers whose upstream sent no usage: a stream cut short, a client that went away, a
server that never reports usage (llama.cpp's).

Counted with tiktoken's ``cl100k_base``, the encoding litellm itself falls back to for self-hosted model
names when it cannot download their tokenizers (as here), read from the copy litellm ships (so nothing is
downloaded and litellm is not imported: a vLLM-only proxy never pays its 3 s and 165 MB). The encoding
(45 MB) is loaded the first time it is needed, and that and every count run in a worker thread: counting
never runs on the event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from router.types import Usage

ENCODING = "cl100k_base"
# OpenAI's accounting of a chat prompt: a few tokens per message for the template, and for the reply's
# priming (the same constants litellm's counter uses).
PER_MESSAGE = 3
PER_REPLY = 3


def bundled_cache_dir() -> str | None:
    """litellm's bundled tiktoken files, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
    return str(path) if path.is_dir() else None


class TokenCounter:
    """``load()`` once (blocking: call it in a thread), then ``await usage(...)``."""

    def __init__(self) -> None:
        self._encoding: Any = None

    def load(self) -> None:
        if self._encoding is not None:
            return
        cache = bundled_cache_dir()
        if cache is not None:
            os.environ.setdefault("TIKTOKEN_CACHE_DIR", cache)
        import tiktoken

        self._encoding = tiktoken.get_encoding(ENCODING)

    def count(self, text: str) -> int:
        self.load()
        return len(self._encoding.encode(text, disallowed_special=()))

    def prompt(self, contents: Iterable[str]) -> int:
        return sum(PER_MESSAGE + self.count(c) for c in contents) + PER_REPLY

    async def usage(self, prompt_contents: list[str], completion: str) -> Usage:
        """The prompt's and the completion's tokens, counted in a worker thread."""
        return await asyncio.to_thread(lambda: Usage(self.prompt(prompt_contents), self.count(completion)))
