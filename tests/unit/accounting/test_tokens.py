from __future__ import annotations

import os
import subprocess
import sys

from router.accounting.tokens import TokenCounter, bundled_cache_dir


async def test_counts_with_the_bundled_encoding_without_importing_litellm() -> None:
    assert bundled_cache_dir() is not None
    counter = TokenCounter()
    counter.load()
    assert os.environ["TIKTOKEN_CACHE_DIR"]
    assert counter.count("hello world, how are you doing today?") == 9
    usage = await counter.usage(["You are terse.", "hi"], "hello world")
    assert usage.input_tokens == (3 + 4) + (3 + 1) + 3
    assert usage.output_tokens == 2
    # Special-token text in a completion is counted as text, never refused.
    assert counter.count("<|endoftext|>") > 1


def test_counting_never_imports_litellm() -> None:
    # In a fresh interpreter: load the encoding, count, and litellm was never imported.
    code = (
        "import sys; from router.accounting.tokens import TokenCounter; c = TokenCounter(); c.load(); "
        "assert c.count('hello') == 1; assert 'litellm' not in sys.modules, 'litellm imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
