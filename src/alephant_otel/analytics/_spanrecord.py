"""One span as every source delivers it (:class:`SpanRecord`), with the policy events and roll-up
totals it may carry, and the small value helpers the model shares.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    pass

__all__ = ["USAGE_UNKNOWN_REASON", "PolicyEvent", "Rollup", "SpanRecord", "iso", "usage_unknown"]


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    """One ``alephant.policy`` span event: the gateway intercepted a request."""

    reason: str
    code: str
    status: int | None


@dataclass(frozen=True, slots=True)
class Rollup:
    """The ``alephant.total.*`` roll-up a session or run span carried when it ended."""

    requests: int = 0
    retries: int = 0
    intercepted: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Rollup) -> Rollup:
        return Rollup(
            self.requests + other.requests,
            self.retries + other.retries,
            self.intercepted + other.intercepted,
            self.cost_usd + other.cost_usd,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )


class SpanRecord:
    """One span, reduced to what the analytics need.

    Attributes are ``None`` when the span did not carry them. ``kind`` is the
    ``alephant.span.kind`` (``"session"``, ``"run"``, ``"request"``) or, for
    spans written by other producers, inferred from the span name and ids;
    ``None`` for any other span.
    """

    __slots__ = (
        "agent_id",
        "corrupt_values",
        "cost_source",
        "cost_usd",
        "end_ns",
        "error",
        "error_type",
        "http_status",
        "incomplete",
        "input_messages",
        "input_tokens",
        "intercepted",
        "kind",
        "metadata",
        "name",
        "operation",
        "output_messages",
        "output_tokens",
        "parent_span_id",
        "policy_events",
        "provider",
        "request_id",
        "request_model",
        "response_model",
        "retry_attempt",
        "rollup",
        "run_id",
        "run_parent_id",
        "service",
        "session_id",
        "session_name",
        "session_path",
        "span_id",
        "start_ns",
        "status_message",
        "streaming",
        "system_instructions",
        "tool_call_id",
        "tool_name",
        "trace_id",
        "user_id",
    )

    def __init__(self, trace_id: str, span_id: str, parent_span_id: str | None, name: str) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.name = name
        self.start_ns = 0
        self.end_ns = 0
        self.error = False
        self.error_type: str | None = None
        self.status_message = ""
        self.kind: str | None = None
        self.session_id: str | None = None
        self.session_name: str | None = None
        self.session_path: str | None = None
        self.agent_id: str | None = None
        self.run_id: str | None = None
        self.run_parent_id: str | None = None
        self.request_id: str | None = None
        self.operation: str | None = None
        self.provider: str | None = None
        self.request_model: str | None = None
        self.response_model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cost_usd: float | None = None
        self.cost_source: str | None = None
        self.retry_attempt = 0
        self.intercepted = False
        self.streaming = False
        self.incomplete = False
        self.http_status: int | None = None
        self.policy_events: tuple[PolicyEvent, ...] = ()
        self.rollup: Rollup | None = None
        self.service: str | None = None
        #: Numbers of the span dropped as corrupt (NaN, infinite, negative, ...) when it was read.
        self.corrupt_values = 0
        self.user_id: str | None = None
        #: ``alephant.metadata.<key>`` attributes (key -> value); read from non-request spans only.
        self.metadata: dict[str, str] | None = None
        self.tool_name: str | None = None
        self.tool_call_id: str | None = None
        #: Captured content (opt-in), as the span carries it: GenAI-convention JSON strings.
        self.input_messages: str | None = None
        self.output_messages: str | None = None
        self.system_instructions: str | None = None

    def __repr__(self) -> str:
        return f"SpanRecord({self.kind or 'span'} {self.name!r} trace={self.trace_id} span={self.span_id})"


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def iso(ns: int | None) -> str | None:
    """Unix nanoseconds as an ISO 8601 UTC timestamp (microsecond precision)."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def usage_unknown(
    operation: str | None, input_tokens: object, output_tokens: object, cost: object, error: bool, intercepted: object
) -> bool:
    """Whether a request span is a GenAI call that ended well and carries no usage nor cost at all.

    The span processor writes ``gen_ai.usage.*`` only when the response reported usage: their
    absence (not a zero) is how a stream without a usage chunk looks.
    """
    return (
        operation is not None
        and input_tokens is None
        and output_tokens is None
        and cost is None
        and not error
        and not intercepted
    )


USAGE_UNKNOWN_REASON: Final = "the response reported no usage (a stream without a usage chunk, or a cut body)"
