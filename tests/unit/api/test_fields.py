from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.api.fields import ALLOWED, CONNECTION, OPENAI, OPERATOR, VLLM, check_fields, flatten_extra_body
from router.errors import InvalidRequest

SPEC = Path(__file__).parents[2] / "fixtures" / "openai-spec" / "chat-completions.openapi.json"


def _request_properties() -> set[str]:
    schemas = json.loads(SPEC.read_text())["components"]["schemas"]

    def props(name: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for part in schemas[name].get("allOf", [schemas[name]]):
            if "$ref" in part:
                out.update(props(part["$ref"].rsplit("/", 1)[-1]))
            else:
                out.update(part.get("properties", {}))
        return out

    return set(props("CreateChatCompletionRequest"))


def test_allowlist_is_the_openai_schema_less_what_configures_the_connection() -> None:
    spec = _request_properties()
    # Every OpenAI request parameter is either forwarded or refused on purpose; none is forgotten.
    assert spec - OPENAI == {"metadata", "service_tier"}
    assert "metadata" in CONNECTION  # litellm reads it as its own configuration
    assert "service_tier" in OPERATOR  # a price tier is the operator's choice
    assert OPENAI - spec == set()


def test_the_lists_do_not_overlap() -> None:
    assert not OPENAI & VLLM
    assert not ALLOWED & (CONNECTION | OPERATOR)


@pytest.mark.parametrize(
    "key",
    ["api_base", "base_url", "api_key", "headers", "extra_headers", "organization", "timeout", "metadata",
     "model_list", "fallbacks", "litellm_logging_obj", "aws_secret_access_key"],
)  # fmt: skip
def test_connection_fields_are_refused_by_name(key: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_fields({"model": "m", "messages": [], key: "x"})
    assert info.value.param == key
    assert "configures the upstream connection" in info.value.message


@pytest.mark.parametrize("key", ["priority", "request_id", "logits_processors", "chat_template", "service_tier"])
def test_operator_fields_are_refused_by_name(key: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_fields({"model": "m", key: 1})
    assert info.value.param == key
    assert "operator" in info.value.message


def test_unknown_fields_are_refused_like_openai_does() -> None:
    with pytest.raises(InvalidRequest) as info:
        check_fields({"model": "m", "x_vendor": 1})
    assert info.value.message == "Unrecognized request argument supplied: x_vendor"


def test_vllm_extras_are_reported() -> None:
    assert check_fields({"model": "m", "min_tokens": 3, "guided_json": {}, "top_p": 1}) == ("guided_json", "min_tokens")


def test_extra_body_is_flattened() -> None:
    body = {"model": "m", "max_tokens": 5, "extra_body": {"n": 2, "top_k": 4}}
    assert flatten_extra_body(body) == {"model": "m", "max_tokens": 5, "n": 2, "top_k": 4}
    assert flatten_extra_body({"model": "m"}) == {"model": "m"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"extra_body": [1]}, "extra_body"),
        ({"extra_body": None}, "extra_body"),
        ({"max_tokens": 1, "extra_body": {"max_tokens": 4000}}, "extra_body.max_tokens"),
        ({"extra_body": {"extra_body": {}}}, "extra_body.extra_body"),
    ],
)
def test_bad_extra_body_is_400(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        flatten_extra_body(body)
    assert info.value.param == param
