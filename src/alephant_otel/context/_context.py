"""``session()`` and ``run()``: ids into OpenTelemetry baggage, a parent span each, roll-ups.

Baggage is the carrier, so ``session()``/``run()``, users who set baggage by
hand with the OTel API, and context propagated from another process all look
the same to the request hook: it reads the active baggage through
:func:`active_state`. Everything derived from one set of ids (the header
tuple, span attributes, the ``Current`` snapshot) is computed once and cached
by those ids, because the hook runs on every request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel.context._ids import new_id
from alephant_otel.context._scope import _dimension_entries, _open_span_scope, _Scope, _set_entries
from alephant_otel.context._state import Current, active_state
from alephant_otel.context._validate import check_value

__all__ = ["run", "session"]


_log = logging.getLogger(__name__)


def session(
    session_id: str | None = None,
    *,
    name: str | None = None,
    path: str | None = None,
    user_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> _Scope:
    """Open a session: its ids go into baggage and a ``session`` span starts.

    Use it as ``with session(...):`` or ``async with session(...):`` or as
    a decorator on sync or async functions, where each call is one session.
    Every gateway request inside carries ``alephant-session-id`` (and name
    and path when given); every span inside carries the ids as attributes.

    Args:
        session_id: The session id; a new sortable id (``sess_...``) is
            generated for each entry when omitted.
        name: A human-readable label, sent as ``alephant-session-name``.
        path: A workflow or route path such as ``/support/triage``.
        user_id: Who the session serves: ``user.id`` on every span inside
            (inherited from the enclosing context when omitted).
        metadata: Your own dimensions (at most 16; keys identifier-like,
            values like names): ``alephant.metadata.<key>`` on every span.
            Neither is sent to the gateway: both travel in baggage only.

    Raises:
        ValueError: An id, name or path is not a valid header value
            (control characters, CR/LF, non-ASCII, or longer than the limit:
            256 characters for ids and names, 1024 for paths), or a user id
            or metadata key or value is not valid (the message names it).

    Examples:
        >>> from alephant_otel import current, session
        >>> with session("case-42", name="Refund request", path="/support/refund") as s:
        ...     s.session_id, current().session_path
        ('case-42', '/support/refund')
    """
    if session_id is not None:
        check_value("session_id", "id", session_id)
    if name is not None:
        check_value("name", "name", name)
    if path is not None:
        check_value("path", "path", path)
    extra = _dimension_entries(user_id, metadata)

    @contextlib.contextmanager
    def open_session() -> Iterator[Current]:
        sid = session_id if session_id is not None else new_id("sess_")
        # A new session starts clean: runs of an enclosing session don't carry over.
        ctx = _set_entries(
            otel_context.get_current(),
            {
                n.BAGGAGE_SESSION_ID: sid,
                n.BAGGAGE_SESSION_NAME: name,
                n.BAGGAGE_SESSION_PATH: path,
                n.BAGGAGE_AGENT_ID: None,
                n.BAGGAGE_RUN_ID: None,
                n.BAGGAGE_RUN_PARENT_ID: None,
                **extra,
            },
        )
        state = active_state(ctx)
        attrs = {**state.span_attributes, n.ATTR_SPAN_KIND: n.SPAN_KIND_SESSION}
        with _open_span_scope(ctx, n.SESSION_SPAN_NAME, attrs):
            yield state.current

    return _Scope(open_session)


def run(
    run_id: str | None = None,
    *,
    agent_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> _Scope:
    """Open a run (one agent task) inside the current session.

    The run id and agent id go into baggage and an ``invoke_agent {agent}``
    span starts. Runs nest: a run opened inside another records the outer run
    as its parent (``alephant.run.parent_id``) and, when no ``agent_id`` is
    given, inherits the outer run's agent.

    Args:
        run_id: The run id; a new sortable id (``run_...``) is generated for
            each entry when omitted.
        agent_id: Stable agent identity, sent as ``Alephant-Agent-Id``.
        name: Agent name for the span (``invoke_agent {name}``); defaults to
            the agent id.
        metadata: Dimensions added to the session's inside this run (see
            :func:`session`).

    Raises:
        ValueError: An id or name is not a valid header value.

    Examples:
        >>> from alephant_otel import current, run, session
        >>> with session("case-42"), run("run-1", agent_id="triage"), run(agent_id="search"):
        ...     c = current()
        ...     c.agent_id, c.parent_run_id
        ('search', 'run-1')
    """
    if run_id is not None:
        check_value("run_id", "id", run_id)
    if agent_id is not None:
        check_value("agent_id", "id", agent_id)
    if name is not None:
        check_value("name", "name", name)
    extra = _dimension_entries(None, metadata)

    @contextlib.contextmanager
    def open_run() -> Iterator[Current]:
        rid = run_id if run_id is not None else new_id("run_")
        ctx = otel_context.get_current()
        outer = active_state(ctx).current
        agent = agent_id if agent_id is not None else outer.agent_id
        ctx = _set_entries(
            ctx,
            {n.BAGGAGE_RUN_ID: rid, n.BAGGAGE_AGENT_ID: agent, n.BAGGAGE_RUN_PARENT_ID: outer.run_id, **extra},
        )
        state = active_state(ctx)
        label = name or agent
        attrs: dict[str, AttributeValue] = {
            **state.span_attributes,
            n.ATTR_SPAN_KIND: n.SPAN_KIND_RUN,
            n.GEN_AI_OPERATION_NAME: n.OPERATION_INVOKE_AGENT,
        }
        if outer.run_id is not None:
            attrs[n.ATTR_RUN_PARENT_ID] = outer.run_id
        if label is not None:
            attrs[n.GEN_AI_AGENT_NAME] = label
        span_name = f"{n.RUN_SPAN_PREFIX} {label}" if label else n.RUN_SPAN_PREFIX
        with _open_span_scope(ctx, span_name, attrs):
            yield state.current

    return _Scope(open_run)
