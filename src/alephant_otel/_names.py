"""Every name this package puts on the wire or on a span, in one place.

The hook, the span processor, the analytics readers, the CLI and the collector
config tests all import from here, so a rename is one edit and a broken
contract is a failing test, not a silent mismatch.

The GenAI names follow the OpenTelemetry GenAI semantic conventions. The
constants in ``opentelemetry-semantic-conventions`` are marked deprecated
there (the conventions are still in development), so the strings are defined
here instead of imported.
"""

from __future__ import annotations

from typing import Final

__all__: list[str] = []  # private module: names are imported explicitly

# --- Baggage keys (public contract: users may set them by hand) -------------
BAGGAGE_SESSION_ID: Final = "alephant.session.id"
BAGGAGE_SESSION_NAME: Final = "alephant.session.name"
BAGGAGE_SESSION_PATH: Final = "alephant.session.path"
BAGGAGE_AGENT_ID: Final = "alephant.agent.id"
BAGGAGE_RUN_ID: Final = "alephant.run.id"
BAGGAGE_KEYS: Final = (
    BAGGAGE_SESSION_ID,
    BAGGAGE_SESSION_NAME,
    BAGGAGE_SESSION_PATH,
    BAGGAGE_AGENT_ID,
    BAGGAGE_RUN_ID,
)
#: Not part of the public contract: lets a process that continues a run learn
#: its parent run across a process boundary.
BAGGAGE_RUN_PARENT_ID: Final = "alephant.run.parent_id"
#: Who the session serves, and the user's own dimensions (``alephant.metadata.<key>``).
#: Carried in baggage like the ids; never gateway headers (the gateway defines six).
BAGGAGE_USER_ID: Final = "alephant.user.id"
BAGGAGE_METADATA_PREFIX: Final = "alephant.metadata."

# --- HTTP headers the gateway reads ------------------------------------------
HEADER_SESSION_ID: Final = "alephant-session-id"
HEADER_SESSION_NAME: Final = "alephant-session-name"
HEADER_SESSION_PATH: Final = "alephant-session-path"
HEADER_AGENT_ID: Final = "Alephant-Agent-Id"
HEADER_RUN_ID: Final = "Alephant-Run-Id"
HEADER_REQUEST_ID: Final = "x-request-id"
#: Baggage key -> header name, in wire order.
BAGGAGE_TO_HEADER: Final = {
    BAGGAGE_SESSION_ID: HEADER_SESSION_ID,
    BAGGAGE_SESSION_NAME: HEADER_SESSION_NAME,
    BAGGAGE_SESSION_PATH: HEADER_SESSION_PATH,
    BAGGAGE_AGENT_ID: HEADER_AGENT_ID,
    BAGGAGE_RUN_ID: HEADER_RUN_ID,
}
#: Cost reported by a gateway in a response header (LiteLLM's name).
DEFAULT_COST_HEADER: Final = "x-litellm-response-cost"
#: The retry counter the OpenAI and Anthropic SDKs (Stainless) send.
HEADER_STAINLESS_RETRY: Final = "x-stainless-retry-count"

# --- Span attributes: ids (stamped on every span inside a session/run) ------
ATTR_SESSION_ID: Final = "alephant.session.id"
ATTR_SESSION_NAME: Final = "alephant.session.name"
ATTR_SESSION_PATH: Final = "alephant.session.path"
ATTR_AGENT_ID: Final = "alephant.agent.id"
ATTR_RUN_ID: Final = "alephant.run.id"
ATTR_RUN_PARENT_ID: Final = "alephant.run.parent_id"
ATTR_REQUEST_ID: Final = "alephant.request.id"
#: What kind of alephant span this is: "session", "run" or "request".
ATTR_SPAN_KIND: Final = "alephant.span.kind"

GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
#: Tells Responses API calls from Chat Completions ones (both are ``chat`` operations).
OPENAI_API_TYPE: Final = "openai.api.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
#: The tool calls a model response asked for, in order (string arrays): lets tool spans be
#: matched to the request that asked for them. Not (yet) a semconv name: the conventions
#: carry requested calls only inside the opt-in output messages.
ATTR_RESPONSE_TOOL_CALL_NAMES: Final = "alephant.response.tool_calls.names"
ATTR_RESPONSE_TOOL_CALL_IDS: Final = "alephant.response.tool_calls.ids"
#: The OTel general attribute Phoenix/OpenInference and Langfuse read as the end user.
ATTR_USER_ID: Final = "user.id"
ATTR_METADATA_PREFIX: Final = "alephant.metadata."
#: Content capture (opt-in): the conversation of a request as GenAI-convention JSON strings.
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
#: The GenAI event that carries the same three values (written as a span event here).
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"

# --- Span attributes: per request --------------------------------------------
ATTR_COST_USD: Final = "alephant.cost.usd"
ATTR_COST_SOURCE: Final = "alephant.cost.source"
COST_SOURCE_GATEWAY: Final = "gateway"
COST_SOURCE_PRICE_TABLE: Final = "price_table"
#: Cost a paid tool reported through ``tool(cost_usd=...)``.
COST_SOURCE_TOOL: Final = "tool"
ATTR_RETRY_ATTEMPT: Final = "alephant.retry.attempt"
ATTR_INTERCEPTED: Final = "alephant.intercepted"
ATTR_STREAMING: Final = "alephant.streaming"
#: Set when the body could not be read to the end (reset, truncated stream).
ATTR_BODY_INCOMPLETE: Final = "alephant.response.incomplete"
#: Why a request failed: the HTTP status ("429", "503") or the exception class (semconv ``error.type``).
ATTR_ERROR_TYPE: Final = "error.type"
EVENT_POLICY: Final = "alephant.policy"
EVENT_POLICY_REASON: Final = "alephant.policy.reason"
EVENT_POLICY_CODE: Final = "alephant.policy.code"
EVENT_POLICY_STATUS: Final = "alephant.policy.status"

# --- Span attributes: roll-ups on session and run spans ----------------------
# Never the per-request names: backends sum gen_ai.usage.* and
# alephant.cost.usd across spans, so a roll-up under those would double count.
ATTR_TOTAL_REQUESTS: Final = "alephant.total.requests"
ATTR_TOTAL_RETRIES: Final = "alephant.total.retries"
ATTR_TOTAL_INTERCEPTED: Final = "alephant.total.intercepted"
ATTR_TOTAL_COST_USD: Final = "alephant.total.cost.usd"
ATTR_TOTAL_INPUT_TOKENS: Final = "alephant.total.input_tokens"
ATTR_TOTAL_OUTPUT_TOKENS: Final = "alephant.total.output_tokens"
#: Tool calls (``tool()``) made inside the scope; their cost is in ATTR_TOTAL_COST_USD.
ATTR_TOTAL_TOOL_CALLS: Final = "alephant.total.tool_calls"

# --- Span names and kinds ------------------------------------------------------
SPAN_KIND_SESSION: Final = "session"
SPAN_KIND_RUN: Final = "run"
SPAN_KIND_REQUEST: Final = "request"
SPAN_KIND_TOOL: Final = "tool"
SESSION_SPAN_NAME: Final = "session"
RUN_SPAN_PREFIX: Final = "invoke_agent"
OPERATION_INVOKE_AGENT: Final = "invoke_agent"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"

# --- Metrics (GenAI semconv plus one cost counter) --------------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_COST: Final = "alephant.client.cost"
#: The only dimensions metrics carry: session and run ids are unbounded and
#: would explode a metrics backend's series count.
METRIC_DIMENSIONS: Final = (
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    ATTR_AGENT_ID,
    ATTR_SESSION_PATH,
)

# --- Environment -------------------------------------------------------------
ENV_GATEWAY_URL: Final = "ALEPHANT_GATEWAY_URL"
ENV_TRACE_FILE: Final = "ALEPHANT_TRACE_FILE"
ENV_COST_HEADER: Final = "ALEPHANT_COST_HEADER"
ENV_SCOPE_BAGGAGE: Final = "ALEPHANT_SCOPE_BAGGAGE"
ENV_VIRTUAL_KEY: Final = "ALEPHANT_VIRTUAL_KEY"
#: "false" keeps the default SIGTERM disposition: no flush before the signal ends the process (_exits.py).
ENV_SIGTERM_FLUSH: Final = "ALEPHANT_SIGTERM_FLUSH"
#: "false" turns the OpenAI Agents SDK integration off (agent spans no longer become runs).
ENV_AGENTS_INTEGRATION: Final = "ALEPHANT_AGENTS_INTEGRATION"
#: How many worker processes the analytics read a big trace file with (1: none).
ENV_ANALYTICS_WORKERS: Final = "ALEPHANT_ANALYTICS_WORKERS"
#: A diagnostic: "1" turns off every fast path into another library's private structures (_fastpaths.py).
ENV_NO_FAST_PATHS: Final = "ALEPHANT_NO_FAST_PATHS"
#: The standard switch for content capture (true/false, or opentelemetry-util-genai's modes).
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: Content caps in bytes of JSON: per message, and for all of one span's content.
ENV_CONTENT_MESSAGE_LIMIT: Final = "ALEPHANT_CONTENT_MESSAGE_LIMIT"
ENV_CONTENT_SPAN_LIMIT: Final = "ALEPHANT_CONTENT_SPAN_LIMIT"
DEFAULT_GATEWAY_URL: Final = "https://ai.alephant.io"

# --- Instrumentation scope -----------------------------------------------------
INSTRUMENTATION_NAME: Final = "alephant_otel"
ENTRY_POINT_NAME: Final = "alephant"
