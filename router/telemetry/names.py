"""Every telemetry name the router emits, in one place.

Span attributes follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``), HTTP and server
conventions (``http.*``, ``server.*``, ``error.type``), plus the router's own (``router.*``).
Prometheus metric names are the OpenTelemetry names with dots turned into underscores and the unit
appended, as the OpenTelemetry-to-Prometheus mapping does.
"""

from typing import Final

# -- span names
SPAN_CLASSIFY: Final = "router.classify"
SPAN_DECIDE: Final = "router.decide"
EVENT_TARGET_SKIPPED: Final = "router.target_skipped"  # on the SERVER span: a target passed over, and why
EVENT_EJECTED: Final = "router.endpoint_ejected"  # on the CLIENT span whose failure ejected its endpoint
EVENT_STREAM_SPLICED: Final = "router.stream_spliced"  # on the SERVER span: a broken stream went on elsewhere
EVENT_HEDGED: Final = "router.hedged"  # on the SERVER span: the first target was slow, the rest of the chain tried too

# -- GenAI semantic conventions
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"  # seconds, streams
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
OPERATION_CHAT: Final = "chat"
PROVIDER_VLLM: Final = "vllm"

# -- HTTP / server / error
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_ROUTE: Final = "http.route"
URL_PATH: Final = "url.path"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
URL_SCHEME: Final = "url.scheme"
CLIENT_ADDRESS: Final = "client.address"
USER_AGENT_ORIGINAL: Final = "user_agent.original"
UNMATCHED_ROUTE: Final = "unmatched"  # http.route of a path no route serves (bounded cardinality)
ERROR_TYPE: Final = "error.type"
# error.type of attempts the router cut short itself: nobody's failure (counted as cancelled, not errors)
CLIENT_DISCONNECTED: Final = "client_disconnected"
HEDGE_LOST: Final = "hedge_lost"  # a hedge's other request answered first (also the cancel message)

# -- the router's own
ROUTER_REQUEST_ID: Final = "router.request_id"
ROUTER_ROUTE: Final = "router.route"
ROUTER_RULE: Final = "router.rule"  # the rule that matched (absent: a pinned alias or a default route)
ROUTER_POLICY: Final = "router.policy"  # the digest of the policy that routed the request
ROUTER_CLUSTER: Final = "router.cluster"
ROUTER_REASON: Final = "router.reason"
ROUTER_ALIAS: Final = "router.alias"
ROUTER_TENANT: Final = "router.tenant"
ROUTER_PINNED: Final = "router.pinned"
ROUTER_ATTEMPT: Final = "router.attempt"
ROUTER_ENDPOINT: Final = "router.endpoint"
ROUTER_OUTCOME: Final = "router.outcome"
ROUTER_NEXT_REASON: Final = "router.next_reason"  # why another attempt follows this one (its error type)
ROUTER_BLAME: Final = "router.blame"  # "client": the request caused this failure; it moved no breaker or ejection
ROUTER_HEDGE: Final = "router.hedge"  # on a CLIENT span: made by a hedge; on the SERVER span: who answered
ROUTER_RETRY: Final = "router.retry"  # a second or later attempt on the same cluster (its retry budget)
ROUTER_SKIP_REASON: Final = "router.skip_reason"
ROUTER_KEY_NAME: Final = "router.key_name"
ROUTER_COST_USD: Final = "router.cost_usd"
ROUTER_BASELINE_COST_USD: Final = "router.baseline_cost_usd"
ROUTER_CACHE: Final = "router.cache"
ROUTER_FEATURE_PROMPT_TOKENS: Final = "router.features.prompt_tokens"
ROUTER_FEATURE_HAS_TOOLS: Final = "router.features.has_tools"
ROUTER_FEATURE_HAS_IMAGES: Final = "router.features.has_images"
ROUTER_CLASSIFIER: Final = "router.classifier"  # classified | cached | skipped | failed | timeout | disabled
ROUTER_TASK: Final = "router.task"
ROUTER_TASK_CONFIDENCE: Final = "router.task_confidence"
ROUTER_TASK_SOURCE: Final = "router.task_source"  # head | custom
ROUTER_COMPLEXITY: Final = "router.complexity"
ROUTER_CLASSIFIER_ERROR: Final = "router.classifier.error"

# -- Prometheus metrics (router_*) and the GenAI client metrics
M_REQUESTS: Final = "router_requests"  # counter -> router_requests_total
M_REQUEST_DURATION: Final = "router_request_duration_seconds"
M_TTFT: Final = "router_time_to_first_token_seconds"
M_IN_FLIGHT: Final = "router_in_flight_requests"
M_UPSTREAM_ERRORS: Final = "router_upstream_errors"
M_UPSTREAM_ATTEMPTS: Final = "router_upstream_attempts"
M_TOKENS: Final = "router_tokens"
M_CLUSTER_IN_FLIGHT: Final = "router_cluster_in_flight_requests"
M_POLICY_RELOADS: Final = "router_policy_reloads"
M_POLICY_LAST_RELOAD_OK: Final = "router_policy_last_reload_success"
M_POLICY_LOADED_AT: Final = "router_policy_loaded_timestamp_seconds"
M_POLICY_INFO: Final = "router_policy_info"  # {digest}: 1 for the policy being served
M_ENDPOINT_UP: Final = "router_endpoint_up"
M_EJECTIONS: Final = "router_endpoint_ejections"  # {cluster,endpoint,reason}
M_ENDPOINT_EJECTED: Final = "router_endpoint_ejected"
M_ENDPOINT_IN_FLIGHT: Final = "router_endpoint_in_flight_requests"
M_ENDPOINT_LATENCY: Final = "router_endpoint_latency_estimate_seconds"  # {cluster,endpoint,measure,stat}
M_RETRIES: Final = "router_retries"  # {cluster,reason}: retries sent to a cluster, by the failure before
M_FAILOVERS: Final = "router_failovers"  # {from_cluster,cluster}: attempts on a fallback after a failure
M_SPILLOVERS: Final = "router_spillovers"  # {cluster,reason}: requests that moved on from a target
M_STREAM_RESCUES: Final = "router_stream_rescues"  # {cluster,how=continued|restarted|failed}: broken streams
M_HEDGES: Final = "router_hedges"  # {route,outcome=primary|hedge|none|budget}: requests whose first target was slow
M_BREAKER_REJECTIONS: Final = "router_breaker_rejections"  # {cluster,limit=in_flight|pending|retries}
M_CLUSTER_PENDING: Final = "router_cluster_pending_requests"
M_CLUSTER_LATENCY: Final = "router_cluster_latency_estimate_seconds"  # {cluster,measure,stat}
M_COST: Final = "router_cost_usd"  # {tenant,route,cluster} counter -> router_cost_usd_total
M_BASELINE_COST: Final = "router_baseline_cost_usd"  # {tenant,route}: the same tokens on the reference model
M_SAVINGS: Final = "router_savings_usd"  # {tenant,route}: baseline minus cost
# Pool economics over the window (router.accounting.economics), the same on every replica.
M_ECON_WINDOW: Final = "router_economics_window_seconds"
M_POOL_UTILISATION: Final = "router_pool_utilisation_ratio"  # {cluster,source=router|vllm}
M_POOL_EFFECTIVE_MTOK: Final = "router_pool_effective_usd_per_mtok"  # {cluster,direction}
M_POOL_EFFECTIVE_1K: Final = "router_pool_effective_usd_per_1k_tokens"  # {cluster}
M_POOL_BASELINE_1K: Final = "router_pool_baseline_usd_per_1k_tokens"  # {cluster}
M_POOL_FIXED_HOURLY: Final = "router_pool_fixed_usd_per_hour"  # {cluster}
M_POOL_IDLE_HOURLY: Final = "router_pool_idle_usd_per_hour"  # {cluster}
M_POOL_TOKENS_HOURLY: Final = "router_pool_tokens_per_hour"  # {cluster,direction,source}
M_ROUTE_EFFECTIVE_1K: Final = "router_route_effective_usd_per_1k_tokens"  # {route}
M_ROUTE_BASELINE_1K: Final = "router_route_baseline_usd_per_1k_tokens"  # {route}
M_BUDGET_EXHAUSTED: Final = "router_budget_exhausted"  # {budget,action=deny|downgrade|unavailable}
M_BUDGET_CHECK: Final = "router_budget_check_duration_seconds"
M_BUDGET_DIFFERENCE: Final = "router_budget_invariant_difference"  # {limit}: counters - settled - open leases
M_BUDGET_LEASES: Final = "router_budget_leases"  # {state=open|expired}: budget reservations not yet closed
M_BUDGET_REAPED: Final = "router_budget_leases_reaped"  # leases this replica closed because they expired
M_BUDGET_LOCAL: Final = "router_budget_local_reservations"  # granted from memory while Redis was away (fail-open)
M_STATE_UP: Final = "router_state_store_up"
M_STATE_ERRORS: Final = "router_state_store_errors"
M_CACHE: Final = "router_response_cache_lookups"  # {result=hit|miss}
M_AUTH_FAILURES: Final = "router_auth_failures"  # {code}
M_CLASSIFICATIONS: Final = "router_classifications"  # -> router_classifications_total{task,source}
M_CLASSIFY_DURATION: Final = "router_classify_duration_seconds"
M_CLASSIFIER_BATCH: Final = "router_classifier_batch_size"
M_CLASSIFIER_CACHE: Final = "router_classifier_cache_lookups"  # {result=hit|miss}
M_CLASSIFIER_ERRORS: Final = "router_classifier_errors"  # {reason=encoder|timeout|unavailable}
M_CLASSIFIER_UP: Final = "router_classifier_up"
M_GENAI_TOKEN_USAGE: Final = "gen_ai_client_token_usage"
M_GENAI_DURATION: Final = "gen_ai_client_operation_duration_seconds"
M_GENAI_TTFC: Final = "gen_ai_client_operation_time_to_first_chunk_seconds"
