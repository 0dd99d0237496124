"""The span model every source produces, and the session tree built from it.

A :class:`SpanRecord` is the compact form of one span: only the fields the
analytics read, so that a million spans fit in memory. Sources (trace file,
Tempo, Jaeger, Phoenix) convert their own JSON into it; nothing downstream
knows where a span came from.

:class:`Session` → :class:`Run` (nested) → :class:`Request` is what the
reconstruction returns. Totals are computed from request spans only; the
roll-ups that session and run spans carry (``alephant.total.*``) are kept as
:attr:`Session.rollup` for a cross-check, and used for the totals only when
no request span of the session was read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from alephant_otel.analytics._spanrecord import (
    USAGE_UNKNOWN_REASON,
    PolicyEvent,
    Rollup,
    SpanRecord,
    _intern,
    iso,
    usage_unknown,
)

if TYPE_CHECKING:
    from alephant_otel.analytics._toolstep import ToolStep


__all__ = [
    "USAGE_UNKNOWN_REASON",
    "PolicyEvent",
    "Request",
    "Rollup",
    "Run",
    "Session",
    "SessionStatus",
    "SpanRecord",
    "iso",
    "usage_unknown",
]


SessionStatus = Literal["active", "completed", "intercepted"]


@dataclass(slots=True, eq=False)
class Request:
    """One gateway request (one request span; a retried call is one per attempt)."""

    request_id: str | None
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    run_id: str | None = None
    run_parent_id: str | None = None
    agent_id: str | None = None
    session_path: str | None = None
    operation: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_source: str | None = None
    retry_attempt: int = 0
    intercepted: bool = False
    streaming: bool = False
    error: bool = False
    status_message: str = ""
    http_status: int | None = None
    policy_events: tuple[PolicyEvent, ...] = ()
    #: The body was not read to its end (the caller stopped early, or it was cut): usage may be missing.
    incomplete: bool = False
    #: A GenAI call that ended well but whose usage never arrived (a stream without a usage chunk):
    #: its tokens and cost are unknown, not zero, and count nothing in the totals.
    usage_unknown: bool = False
    #: Why it failed (``error.type``: an HTTP status, an exception's name, an error's type or code).
    error_type: str | None = None
    #: The conversation, when content capture was on: GenAI-convention JSON strings (see ``_conversation``).
    input_messages: str | None = None
    output_messages: str | None = None
    system_instructions: str | None = None

    @classmethod
    def from_record(cls, r: SpanRecord) -> Request:
        """The request a request span describes."""
        # Names, models and run ids repeat across thousands of requests: one
        # shared string each instead of one per span (hundreds of MB per 1M spans).
        return cls(
            r.request_id,
            sys.intern(r.trace_id),
            r.span_id,
            r.parent_span_id,
            sys.intern(r.name),
            r.start_ns,
            r.end_ns,
            _intern(r.run_id),
            _intern(r.run_parent_id),
            _intern(r.agent_id),
            _intern(r.session_path),
            _intern(r.operation),
            _intern(r.provider),
            _intern(r.request_model),
            _intern(r.response_model),
            r.input_tokens or 0,
            r.output_tokens or 0,
            r.cost_usd or 0.0,
            _intern(r.cost_source),
            r.retry_attempt,
            r.intercepted or bool(r.policy_events),
            r.streaming,
            r.error,
            sys.intern(r.status_message),
            r.http_status,
            r.policy_events,
            r.incomplete,
            usage_unknown(
                r.operation, r.input_tokens, r.output_tokens, r.cost_usd, r.error, r.intercepted or r.policy_events
            ),
            _intern(r.error_type),
            r.input_messages,
            r.output_messages,
            r.system_instructions,
        )

    @property
    def latency_s(self) -> float:
        """Duration of the request span in seconds (to the end of a streamed body)."""
        return max(0, self.end_ns - self.start_ns) / 1e9

    @property
    def retried(self) -> bool:
        """Whether this attempt was a client retry (``alephant.retry.attempt`` > 0)."""
        return self.retry_attempt > 0

    @property
    def model(self) -> str | None:
        """The response model, else the requested one."""
        return self.response_model or self.request_model


@dataclass(slots=True, eq=False)
class _Totals:
    requests: int = 0
    retries: int = 0
    errors: int = 0
    intercepted: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0

    def add(self, req: Request) -> None:
        self.requests += 1
        self.retries += req.retry_attempt > 0
        self.errors += req.error
        self.intercepted += req.intercepted
        self.cost_usd += req.cost_usd
        self.input_tokens += req.input_tokens
        self.output_tokens += req.output_tokens

    def add_tool(self, cost_usd: float) -> None:
        """Count one tool call: its cost is part of the cost (model plus tools)."""
        self.tool_calls += 1
        self.cost_usd += cost_usd

    def merge(self, other: _Totals) -> None:
        self.tool_calls += other.tool_calls
        self.requests += other.requests
        self.retries += other.retries
        self.errors += other.errors
        self.intercepted += other.intercepted
        self.cost_usd += other.cost_usd
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


@dataclass(slots=True, eq=False)
class Run:
    """One run (agent task) and what happened inside it.

    ``requests`` are the requests made directly in this run; ``runs`` are the
    nested runs. The totals (``cost_usd``, ``input_tokens``, ...) include the
    nested runs, like the ``alephant.total.*`` roll-ups on run spans do.
    """

    run_id: str
    agent_id: str | None = None
    name: str | None = None
    parent_run_id: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    span_present: bool = False
    error: bool = False
    rollup: Rollup | None = None
    runs: list[Run] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    #: Tool calls made directly in this run (``ToolStep``), in start order.
    tools: list[ToolStep] = field(default_factory=list)
    _totals: _Totals = field(default_factory=_Totals, repr=False)

    def walk(self) -> Iterator[Run]:
        """This run and every run nested in it, depth first."""
        yield self
        for child in self.runs:
            yield from child.walk()

    def all_requests(self) -> Iterator[Request]:
        """Every request in this run and its nested runs."""
        for run in self.walk():
            yield from run.requests

    @property
    def request_count(self) -> int:
        """Requests in this run and its nested runs."""
        return self._totals.requests

    @property
    def cost_usd(self) -> float:
        """Cost of this run and its nested runs: its requests and its paid tool calls."""
        return self._totals.cost_usd

    @property
    def tool_calls(self) -> int:
        """Tool calls in this run and its nested runs."""
        return self._totals.tool_calls

    @property
    def input_tokens(self) -> int:
        """Input tokens of this run and its nested runs."""
        return self._totals.input_tokens

    @property
    def output_tokens(self) -> int:
        """Output tokens of this run and its nested runs."""
        return self._totals.output_tokens

    @property
    def usage_unknown(self) -> int:
        """Requests in this run and its nested runs whose usage never arrived (counted as nothing)."""
        return sum(r.usage_unknown for r in self.all_requests())

    @property
    def retries(self) -> int:
        """Retried attempts in this run and its nested runs."""
        return self._totals.retries

    @property
    def errors(self) -> int:
        """Requests that ended with status ERROR (interceptions included)."""
        return self._totals.errors

    @property
    def intercepted(self) -> int:
        """Requests the gateway intercepted."""
        return self._totals.intercepted

    @property
    def latency_s(self) -> float:
        """Duration of the run (its span, else first request start to last request end)."""
        return max(0, self.end_ns - self.start_ns) / 1e9


@dataclass(slots=True, eq=False)
class Session:
    """One session: its runs (nested), its requests and their totals.

    ``requests`` holds every request of the session (in all runs), in start
    order; ``runs`` holds the top-level runs and ``direct_requests`` the
    requests made outside any run. Totals come from the request spans; when
    none was read (sampled out, other backend) they fall back to the session
    span's roll-up (``totals_from_rollup`` is then true).
    """

    session_id: str
    name: str | None = None
    path: str | None = None
    status: SessionStatus = "completed"
    start_ns: int = 0
    end_ns: int | None = None
    last_activity_ns: int = 0
    span_present: bool = False
    rollup: Rollup | None = None
    totals_from_rollup: bool = False
    runs: list[Run] = field(default_factory=list)
    direct_requests: list[Request] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)
    #: Who the session serves (``user.id``) and its ``alephant.metadata.*`` dimensions.
    user_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: Every tool call of the session (``ToolStep``), in start order; ``direct_tools`` outside any run.
    tools: list[ToolStep] = field(default_factory=list)
    direct_tools: list[ToolStep] = field(default_factory=list)
    _totals: _Totals = field(default_factory=_Totals, repr=False)

    def walk_runs(self) -> Iterator[Run]:
        """Every run of the session, depth first."""
        for run in self.runs:
            yield from run.walk()

    def find_run(self, run_id: str) -> Run | None:
        """The run with this id, at any depth."""
        return next((r for r in self.walk_runs() if r.run_id == run_id), None)

    @property
    def request_count(self) -> int:
        """Number of requests (attempts) in the session."""
        return self._totals.requests

    @property
    def cost_usd(self) -> float:
        """Total cost in USD: model requests plus paid tool calls."""
        return self._totals.cost_usd

    @property
    def tool_calls(self) -> int:
        """Tool calls in the session."""
        return self._totals.tool_calls

    @property
    def input_tokens(self) -> int:
        """Total input tokens."""
        return self._totals.input_tokens

    @property
    def output_tokens(self) -> int:
        """Total output tokens."""
        return self._totals.output_tokens

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self._totals.input_tokens + self._totals.output_tokens

    @property
    def usage_unknown(self) -> int:
        """Requests whose usage never arrived: their tokens and cost count nothing in the totals."""
        return sum(r.usage_unknown for r in self.requests)

    @property
    def retries(self) -> int:
        """Retried attempts."""
        return self._totals.retries

    @property
    def errors(self) -> int:
        """Requests that ended with status ERROR (interceptions included)."""
        return self._totals.errors

    @property
    def intercepted(self) -> int:
        """Requests the gateway intercepted."""
        return self._totals.intercepted

    @property
    def policy_events(self) -> list[PolicyEvent]:
        """Every policy event in the session, in request order."""
        return [e for r in self.requests for e in r.policy_events]

    @property
    def duration_s(self) -> float:
        """From the first span's start to the session's end (or its last activity)."""
        end = self.end_ns if self.end_ns else self.last_activity_ns
        return max(0, end - self.start_ns) / 1e9

    @property
    def rollup_matches(self) -> bool | None:
        """Whether the session span's roll-up equals the request-span totals.

        ``None`` when there is nothing to compare (no roll-up, or totals taken
        from it). A mismatch is normal when part of the session ran in another
        process (the roll-up counts only its own process) or spans were
        sampled out.
        """
        if self.rollup is None or self.totals_from_rollup:
            return None
        r, t = self.rollup, self._totals
        return (
            r.requests == t.requests
            and r.retries == t.retries
            and r.intercepted == t.intercepted
            and r.input_tokens == t.input_tokens
            and r.output_tokens == t.output_tokens
            and abs(r.cost_usd - t.cost_usd) <= 1e-9 + 1e-6 * abs(t.cost_usd)
        )
