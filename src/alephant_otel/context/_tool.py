"""``tool()``: one tool call inside a run, as an ``execute_tool {name}`` span.

A session's steps are model calls *and* tool calls (a search, a database
lookup, a paid API). Model calls are seen on the wire; tool calls run in the
user's code, so the user marks them. The span is a child of the active span
(the run's, inside ``run()``), and the span processor stamps the session and
run ids on it from baggage like on any span. A paid tool's cost counts in the
run's and the session's ``alephant.total.cost.usd``, and every call in their
``alephant.total.tool_calls``. Nothing here runs on the per-request path.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import traceback
from collections.abc import Iterator
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel._impossible import MAX_COST_USD
from alephant_otel.context import _scope
from alephant_otel.context._scope import _detach, _Scope, _tracer
from alephant_otel.context._state import Current, active_state, active_totals
from alephant_otel.context._validate import check_value
from alephant_otel.redact._scrub import scrub_text

__all__ = ["tool"]

_log = logging.getLogger(__name__)

#: A description is documentation, not a header: any text, bounded so a span stays small.
MAX_DESCRIPTION_LENGTH: Final = 1024


def _check_cost(cost_usd: object) -> float:
    """``cost_usd`` as a float, or ``ValueError`` naming the field."""
    # bool is an int: True is not a cost of $1.
    if isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)):
        raise ValueError(f"cost_usd must be a number of USD, got {type(cost_usd).__name__}")
    cost = float(cost_usd)
    if not math.isfinite(cost) or cost < 0 or cost > MAX_COST_USD:
        raise ValueError(f"cost_usd must be a finite number between 0 and {MAX_COST_USD:g}, got {cost_usd!r}")
    return cost


def _record_duration(ctx: otel_context.Context, duration_s: float, error_type: str | None) -> None:
    """Count the call in ``gen_ai.client.operation.duration`` as an ``execute_tool`` operation. Never raises.

    Through the configured bridge's instruments, with the same bounded dimensions as requests
    (agent and path): never the tool's cost (the cost counter is the gateway's) nor user or metadata.
    """
    instruments = _scope.instruments
    if instruments is None:  # nothing configured: no meter to record on
        return
    try:
        cur = active_state(ctx).current
        instruments.record(
            n.OPERATION_EXECUTE_TOOL,
            None,
            None,
            None,
            cur.agent_id,
            cur.session_path,
            None,
            None,
            None,
            duration_s,
            error_type,
        )
    except Exception:
        _log.debug("alephant_otel: could not record a tool call's duration", exc_info=True)


def tool(
    name: str,
    *,
    call_id: str | None = None,
    cost_usd: float | None = None,
    description: str | None = None,
) -> _Scope:
    """Record one tool call: an ``execute_tool {name}`` span, child of the active run.

    Use it as ``with tool(...):``, ``async with tool(...):`` or as a decorator
    on sync or async functions (each call is one tool call). An exception
    marks the span failed (``error.type``) and propagates unchanged.

    Args:
        name: The tool's name (``gen_ai.tool.name``), e.g. ``web_search``.
        call_id: The id of the model's tool call this answers
            (``gen_ai.tool.call.id``), to match it to the request that asked.
        cost_usd: What the call cost, for a paid tool: recorded as
            ``alephant.cost.usd`` (source ``tool``) and counted in the run's
            and the session's total cost.
        description: What the tool does (``gen_ai.tool.description``).

    Raises:
        ValueError: ``name`` or ``call_id`` is not a valid value (see
            :func:`session`), ``description`` is not a string of at most 1024
            characters, or ``cost_usd`` is not a finite number >= 0.

    Examples:
        >>> from alephant_otel import run, session, tool
        >>> with session("case-42"), run(agent_id="triage"):
        ...     with tool("lookup_order", call_id="call_1", cost_usd=0.002):
        ...         order = {"id": 1234}
        >>> @tool("web_search")
        ... def search(query: str) -> list[str]:
        ...     return [query]
    """
    check_value("name", "name", name)
    if call_id is not None:
        check_value("call_id", "id", call_id)
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH):
        raise ValueError(f"description must be a string of at most {MAX_DESCRIPTION_LENGTH} characters")
    cost = _check_cost(cost_usd) if cost_usd is not None else None
    attributes: dict[str, AttributeValue] = {
        n.ATTR_SPAN_KIND: n.SPAN_KIND_TOOL,
        n.GEN_AI_OPERATION_NAME: n.OPERATION_EXECUTE_TOOL,
        n.GEN_AI_TOOL_NAME: name,
    }
    if call_id is not None:
        attributes[n.GEN_AI_TOOL_CALL_ID] = call_id
    if description is not None:
        attributes[n.GEN_AI_TOOL_DESCRIPTION] = description
    if cost is not None:
        attributes[n.ATTR_COST_USD] = cost
        attributes[n.ATTR_COST_SOURCE] = n.COST_SOURCE_TOOL
    span_name = f"{n.OPERATION_EXECUTE_TOOL} {name}"

    @contextlib.contextmanager
    def open_tool() -> Iterator[Current]:
        started = time.perf_counter()
        error_type: str | None = None
        ctx = otel_context.get_current()
        span = _tracer().start_span(span_name, context=ctx, kind=trace.SpanKind.INTERNAL, attributes=attributes)
        # Attached, so a model call the tool makes is its child; the roll-up counters
        # stay the enclosing scopes', so such a call still counts in the run.
        attached = trace.set_span_in_context(span, ctx)
        token = otel_context.attach(attached)
        try:
            yield active_state(ctx).current
        except BaseException as exc:
            if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
                error_type = type(exc).__qualname__
            if span.is_recording() and error_type is not None:
                message = scrub_text(str(exc))
                stacktrace = scrub_text("".join(traceback.format_exception(exc)))
                span.record_exception(exc, {"exception.message": message, "exception.stacktrace": stacktrace})
                span.set_attribute(n.ATTR_ERROR_TYPE, type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"[:512]))
            raise
        finally:
            _detach(token, attached, ctx)  # as session()/run(): an exit in another task never logs a traceback
            # A failed call was still made (and a paid one still billed): it counts.
            for totals in active_totals(ctx):
                totals.add_tool(cost)
            span.end()
            _record_duration(ctx, time.perf_counter() - started, error_type)

    return _Scope(open_tool)
