"""What a client may send upstream: the one allowlist of request fields (pure).

The policy decides where a request goes and how the connection is made; the body never does. A body
field is forwarded only if it is listed here:

- ``OPENAI``: the request parameters of OpenAI's Chat Completions schema (``openai-spec`` in the test
  fixtures), forwarded to every cluster kind (litellm translates them per provider);
- ``VLLM``: vLLM's documented sampling and chat-template extras, forwarded only to ``vllm`` clusters
  (a request that carries one skips frontier targets; if none is left it is a 400 naming the field).

Everything else is a 400 naming the field: ``CONNECTION`` fields (endpoints, keys, headers, timeouts,
litellm's own routing) and ``OPERATOR`` fields (settings that belong to whoever runs the upstream) get a
message that says why; any other name is unknown, as OpenAI's own API answers. ``extra_body`` (a
litellm / SDK convention) is flattened into the top level first and checked like it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import InvalidRequest

OPENAI = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "stop",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "modalities",
        "audio",
        "prediction",
        "reasoning_effort",
        "verbosity",
        "web_search_options",
        "store",
        "moderation",
    }
)

VLLM = frozenset(
    {
        "top_k",
        "min_p",
        "repetition_penalty",
        "length_penalty",
        "stop_token_ids",
        "include_stop_str_in_output",
        "ignore_eos",
        "min_tokens",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "truncate_prompt_tokens",
        "prompt_logprobs",
        "allowed_token_ids",
        "bad_words",
        "echo",
        "add_generation_prompt",
        "continue_final_message",
        "add_special_tokens",
        "documents",
        "chat_template_kwargs",
        "mm_processor_kwargs",
        "guided_json",
        "guided_regex",
        "guided_choice",
        "guided_grammar",
        "guided_decoding_backend",
        "guided_whitespace_pattern",
        "structural_tag",
        "structured_outputs",
        "return_tokens_as_token_ids",
        "return_token_ids",
        "include_reasoning",
        "cache_salt",
    }
)

# Fields that configure the connection or litellm itself: where the request goes, with which key and
# headers, for how long, with what retries. Named so the 400 can say why.
CONNECTION = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "organization",
        "project",
        "headers",
        "extra_headers",
        "extra_query",
        "timeout",
        "request_timeout",
        "stream_timeout",
        "metadata",
        "model_list",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "num_retries",
        "max_retries",
        "custom_llm_provider",
        "deployment_id",
        "mock_response",
        "mock_tool_calls",
        "input_cost_per_token",
        "output_cost_per_token",
        "proxy_server_request",
        "azure_ad_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "client",
        "http_client",
    }
)

# Settings of the upstream that belong to whoever runs it, not to a caller: scheduling priority and
# price tier, request ids that other requests' logs rely on, server-side code and templates.
OPERATOR = frozenset(
    {
        "service_tier",
        "priority",
        "request_id",
        "kv_transfer_params",
        "logits_processors",
        "chat_template",
        "vllm_xargs",
        "best_of",
        "use_beam_search",
    }
)

ALLOWED = OPENAI | VLLM


def flatten_extra_body(body: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extra_body`` into the top level (as the OpenAI SDK does before sending)."""
    extra = body.get("extra_body")
    if extra is None and "extra_body" not in body:
        return body
    if not isinstance(extra, dict):
        raise InvalidRequest("'extra_body' must be a JSON object.", param="extra_body")
    out = {k: v for k, v in body.items() if k != "extra_body"}
    for key, value in extra.items():
        if key == "extra_body":
            raise InvalidRequest("'extra_body' must not contain another 'extra_body'.", param="extra_body.extra_body")
        if key in out:
            raise InvalidRequest(
                f"'{key}' is given both at the top level and in 'extra_body'; send it once.", param=f"extra_body.{key}"
            )
        out[key] = value
    return out


def check_fields(body: Mapping[str, Any]) -> tuple[str, ...]:
    """Refuse any field not on the allowlist; return the vLLM-only fields present (sorted)."""
    vllm_only: list[str] = []
    for key in body:
        if key in OPENAI:
            continue
        if key in VLLM:
            vllm_only.append(key)
            continue
        raise InvalidRequest(refusal(key), param=key)
    return tuple(sorted(vllm_only))


def refusal(key: str) -> str:
    """Why ``key`` may not be sent."""
    if key in CONNECTION or key.startswith(("litellm_", "aws_", "vertex_", "azure_")):
        return (
            f"'{key}' is not accepted: it configures the upstream connection, which this proxy's routing policy "
            "decides (the request body never chooses an endpoint, key, header or timeout)."
        )
    if key in OPERATOR:
        return f"'{key}' is not accepted: it is set by the operator of the upstream, not per request."
    return f"Unrecognized request argument supplied: {key}"
