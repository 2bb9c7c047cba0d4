from __future__ import annotations

import pytest

from router.redaction import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://pool:8000/v1", "http://pool:8000/v1"),
        ("http://user:s3cret@pool:8000/v1", "http://pool:8000/v1"),
        ("https://gw.example/v1?api-key=abc#frag", "https://gw.example/v1"),
        ("redis://:pw@10.0.0.1:6379/0", "redis://10.0.0.1:6379/0"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("openai/gpt-4o", "openai/gpt-4o"),
        ("http://user:pw@host:notaport/v1", "(redacted)"),
        ("not a url with key=1?x", "(redacted)"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
