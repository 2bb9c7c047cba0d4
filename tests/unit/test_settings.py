from pathlib import Path

import pytest

from router.errors import PolicyError
from router.settings import Settings


def test_env_then_flags() -> None:
    s = Settings.from_env({"ROUTER_PORT": "9000", "ROUTER_EMULATE_MISSING": "true"}, port=None, host="0.0.0.0")
    assert (s.port, s.host, s.emulate_missing, s.policies) == (9000, "0.0.0.0", True, Path("policies"))
    assert Settings.from_env({"ROUTER_PORT": "9000"}, port=1234).port == 1234


def test_capture_content_follows_the_otel_switch() -> None:
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    assert Settings.from_env(env).capture_content


def test_bad_values_are_named() -> None:
    with pytest.raises(PolicyError, match="ROUTER_MAX_BODY_BYTES"):
        Settings.from_env({"ROUTER_MAX_BODY_BYTES": "12"})
