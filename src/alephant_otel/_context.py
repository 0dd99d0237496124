"""Sessions and runs: ids in OpenTelemetry baggage, parent spans, roll-ups.

Baggage is the carrier, so ``session()``/``run()``, users who set baggage by
hand with the OTel API, and context propagated from another process all look
the same to the request hook: it reads the active baggage through
:func:`active_state`. Everything derived from one set of ids (the header
tuple, span attributes, the ``Current`` snapshot) is computed once and cached
by those ids, because the hook runs on every request.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import os
import traceback
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel._dimensions import (
    check_metadata,
    check_user_id,
    dimension_attributes,
    metadata_entries,
    metadata_of,
    warned_keys,
)
from alephant_otel._ids import new_id
from alephant_otel._scrub import scrub_text
from alephant_otel._totals import RequestTotals
from alephant_otel._validate import check_value, is_valid
from alephant_otel._version import __version__

__all__ = [
    "Current",
    "State",
    "active_state",
    "current",
    "end_open_requests",
    "on_open_requests",
    "run",
    "session",
    "state_for",
    "use_tracer_provider",
]

_log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# Baggage key -> validation kind. The parent-run key is internal but travels
# like the others so a run continued in another process knows its parent.
_KINDS: Final = {
    n.BAGGAGE_SESSION_ID: "id",
    n.BAGGAGE_SESSION_NAME: "name",
    n.BAGGAGE_SESSION_PATH: "path",
    n.BAGGAGE_AGENT_ID: "id",
    n.BAGGAGE_RUN_ID: "id",
    n.BAGGAGE_RUN_PARENT_ID: "id",
    n.BAGGAGE_USER_ID: "id",
}
_KEYS: Final = tuple(_KINDS)
_TOTALS_KEY: Final = otel_context.create_key("alephant_otel.totals")


@dataclass(frozen=True)
class Current:
    """The alephant ids active in the current context (``None`` where unset).

    Examples:
        >>> from alephant_otel import current, session
        >>> with session("sess_1", name="Refund"):
        ...     current().session_id
        'sess_1'
    """

    session_id: str | None = None
    session_name: str | None = None
    session_path: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    parent_run_id: str | None = None
    #: Who the session serves (``session(user_id=...)``).
    user_id: str | None = None
    #: The user's own dimensions (``session(metadata=...)``, ``run(metadata=...)``), read-only.
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class State:
    """Everything the hot path derives from one set of ids, computed once."""

    current: Current
    #: (header name, value) pairs for the gateway, in wire order.
    headers: tuple[tuple[str, str], ...]
    #: Attributes stamped on every span started in this context.
    span_attributes: dict[str, AttributeValue]
    #: ``headers`` as httpx keeps them internally: (name, lower-case name,
    #: value), ASCII-encoded once here instead of on every request.
    raw_headers: tuple[tuple[bytes, bytes, bytes], ...] = ()


_EMPTY: Final = State(Current(), (), {})


# --- deriving state from baggage (the hot path) -------------------------------

_cache: dict[tuple[object, ...], State] = {}
_CACHE_LIMIT: Final = 4096
_warned_keys: set[str] = warned_keys  # one set with the metadata keys' warnings


def _warn_dropped(key: str) -> None:
    # One warning per key per process: inbound baggage is outside data and a
    # bad value would otherwise log on every request.
    if key not in _warned_keys:
        _warned_keys.add(key)
        _log.warning(
            "dropping baggage entry %r: its value is not a valid HTTP header value "
            "(control characters, non-ASCII, or too long); further drops of this key are silent",
            key,
        )


def _derive(values: tuple[object, ...]) -> State:
    clean: dict[str, str] = {}
    for key, value in zip(_KEYS, values[:-1], strict=True):
        if value is None:
            continue
        if is_valid(_KINDS[key], value):
            clean[key] = cast(str, value)
        else:
            _warn_dropped(key)
    dimensions, metadata = dimension_attributes(clean.get(n.BAGGAGE_USER_ID), cast(Any, values[-1]))
    if not clean and not metadata:
        return _EMPTY
    cur = Current(
        session_id=clean.get(n.BAGGAGE_SESSION_ID),
        session_name=clean.get(n.BAGGAGE_SESSION_NAME),
        session_path=clean.get(n.BAGGAGE_SESSION_PATH),
        agent_id=clean.get(n.BAGGAGE_AGENT_ID),
        run_id=clean.get(n.BAGGAGE_RUN_ID),
        parent_run_id=clean.get(n.BAGGAGE_RUN_PARENT_ID),
        user_id=clean.get(n.BAGGAGE_USER_ID),
        metadata=metadata,
    )
    headers = tuple((header, clean[key]) for key, header in n.BAGGAGE_TO_HEADER.items() if key in clean)
    attrs: dict[str, AttributeValue] = {}
    for key in n.BAGGAGE_KEYS:
        if key in clean:
            attrs[key] = clean[key]
    if cur.session_id is not None:
        attrs[n.GEN_AI_CONVERSATION_ID] = cur.session_id
    if cur.agent_id is not None:
        attrs[n.GEN_AI_AGENT_ID] = cur.agent_id
    attrs.update(dimensions)  # span attributes only: never headers, never metric dimensions
    # Values passed is_valid(): visible ASCII, so the encoding cannot fail.
    raw = tuple((h.encode("ascii"), h.lower().encode("ascii"), v.encode("ascii")) for h, v in headers)
    return State(cur, headers, attrs, raw)


# The last baggage seen and its state: a request and the spans inside it read
# the same baggage several times, and comparing two small dicts whose values are
# the very same objects is cheaper than building and hashing the key tuple.
_last: tuple[dict[str, object], State] = ({}, _EMPTY)


# The last context seen and its state. Contexts are immutable, so the same
# object means the same baggage: every span and request started under one
# context (the common case) skips even the baggage comparison below.
_last_context: tuple[Context | None, State] = (None, _EMPTY)


def active_state(ctx: Context | None = None) -> State:
    """The derived state for ``ctx`` (default: the current context). Never raises."""
    global _last, _last_context  # noqa: PLW0603 - tuples, swapped atomically
    if ctx is None:
        ctx = otel_context.get_current()
    seen = _last_context
    if ctx is seen[0]:
        return seen[1]
    entries = baggage.get_all(ctx)
    if not entries:
        _last_context = (ctx, _EMPTY)
        return _EMPTY
    last = _last
    if entries == last[0]:
        _last_context = (ctx, last[1])
        return last[1]
    values = (*[entries.get(key) for key in _KEYS], metadata_of(entries))
    state = _cache.get(values)
    if state is None:
        state = _derive(values)
        if len(_cache) >= _CACHE_LIMIT:
            # A long-running worker sees unbounded distinct sessions: bound the
            # cache rather than keep every session ever seen.
            _cache.clear()
        _cache[values] = state
    _last = (dict(entries), state)
    _last_context = (ctx, state)
    return state


#: (span, state) of the span the processor started last. The request hook runs
#: right after its span starts, under the same baggage: it takes the state from
#: here (``state_for``) instead of reading the baggage again (~6 calls). One tuple,
#: swapped whole: another thread's span in between only makes the check miss. The
#: hook empties it, so a request's span is not kept alive by it (at most the last
#: span started outside any request is, until the next one starts).
_NOTHING_STARTED: Final[tuple[object, State]] = (None, _EMPTY)
started: tuple[object, State] = _NOTHING_STARTED


def state_for(span: object) -> State:
    """The state of ``span``'s start if the processor just started it, else :func:`active_state`."""
    global started  # noqa: PLW0603 - a tuple, swapped atomically
    last = started
    if last[0] is span:
        started = _NOTHING_STARTED
        return last[1]
    return active_state()


def clear_cache() -> None:
    """Forget every derived state (tests: a fresh process as far as the hot path goes)."""
    global _last, _last_context, started  # noqa: PLW0603
    _last = ({}, _EMPTY)
    _last_context = (None, _EMPTY)
    started = _NOTHING_STARTED
    _cache.clear()


def active_totals(ctx: Context | None = None) -> tuple[RequestTotals, ...]:
    """The roll-up counters of every session/run scope enclosing ``ctx``."""
    totals = otel_context.get_value(_TOTALS_KEY, ctx)
    return cast("tuple[RequestTotals, ...]", totals) if totals else ()


def current() -> Current:
    """Return the alephant ids active in the current context.

    Works the same whether the ids came from :func:`session`/:func:`run`, from
    baggage set by hand, or from context propagated by another service.
    Invalid baggage values read as ``None``.
    """
    return active_state().current


# --- scopes ----------------------------------------------------------------------


#: The scopes open in this context, oldest first, as (scope object, what it opened).
#: One variable for all scopes: a context keeps every variable ever set in it, so one
#: variable per scope object grew the main thread's context by ~200 bytes per session.
_OPEN_SCOPES: Final[ContextVar[tuple[tuple[_Scope, contextlib.AbstractContextManager[Current]], ...]]] = ContextVar(
    "alephant_otel_open_scopes", default=()
)


class _Scope:
    """A context manager (``with`` and ``async with``) that is also a decorator for sync and async functions.

    Each ``with`` (or each decorated call) opens a fresh scope from
    ``self._open``. One scope object entered by concurrent tasks or threads
    must exit, in each, the scope that one entered: a context variable says
    which (a plain stack on the object would pop another task's scope and
    detach the wrong context). A ``with`` that exits in another context than
    it entered (an async fixture set up and torn down in two tasks) exits the
    newest scope of this object still open, as a stack would.
    """

    __slots__ = ("_open", "_open_all")

    def __init__(self, open_scope: Callable[[], contextlib.AbstractContextManager[Current]]) -> None:
        self._open = open_scope
        self._open_all: list[contextlib.AbstractContextManager[Current]] = []

    def __enter__(self) -> Current:
        cm = self._open()
        value = cm.__enter__()
        _OPEN_SCOPES.set((*_OPEN_SCOPES.get(), (self, cm)))
        self._open_all.append(cm)
        return value

    def __exit__(self, *exc: Any) -> bool | None:
        here = _OPEN_SCOPES.get()
        for i in range(len(here) - 1, -1, -1):
            scope, cm = here[i]
            # Still open, and not exited by the fallback below from another context.
            if scope is self and cm in self._open_all:
                self._open_all.remove(cm)
                _OPEN_SCOPES.set(here[:i] + here[i + 1 :])
                break
        else:
            cm = self._open_all.pop()  # IndexError, as a stack: __exit__ without __enter__
        return cm.__exit__(*exc)

    async def __aenter__(self) -> Current:
        # An awaited coroutine runs in its task's context, so what __enter__
        # attaches stays attached in the task, as with ``with``.
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self.__exit__(*exc)

    def __call__(self, func: F) -> F:
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                return _scoped_async_generator(self._open, func, args, kwargs)

            return cast(F, agen_wrapper)
        if inspect.iscoroutinefunction(func):
            # The scope must open inside the coroutine, when it runs, not when
            # the coroutine object is created (the ContextDecorator pitfall).
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._open():
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return _scoped_generator(self._open, func, args, kwargs)

            return cast(F, gen_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._open():
                return func(*args, **kwargs)

        return cast(F, wrapper)


# --- decorated generators ----------------------------------------------------------
#
# A generator runs in the context of whoever resumes it, between its yields the
# consumer runs, and a ``with`` around ``yield`` stays attached across them: the
# consumer would make its calls inside the generator's run, and a generator
# finished inside another scope would detach that scope's context. So a
# decorated generator gets a context of its own (a copy of the caller's at its
# first step, as an asyncio task does), with the scope attached in it, and each
# step of its body runs in that context; the consumer's context never changes.


def _enter_own_context(
    open_scope: Callable[[], contextlib.AbstractContextManager[Current]],
) -> tuple[contextvars.Context, contextlib.AbstractContextManager[Current]]:
    """A copy of the current context, with a new scope entered in it (and only in it)."""
    ctx = contextvars.copy_context()
    cm = open_scope()
    ctx.run(cm.__enter__)
    return ctx, cm


def _exit_scope(
    ctx: contextvars.Context, cm: contextlib.AbstractContextManager[Current], exc: BaseException | None
) -> None:
    if exc is None or isinstance(exc, GeneratorExit):
        # Closed early (a consumer's break, garbage collection): stopped, not failed.
        ctx.run(cm.__exit__, None, None, None)
    else:
        ctx.run(cm.__exit__, type(exc), exc, exc.__traceback__)


def _scoped_generator(
    open_scope: Callable[[], contextlib.AbstractContextManager[Current]],
    func: Callable[..., Iterator[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Generator[Any, Any, Any]:
    ctx, cm = _enter_own_context(open_scope)
    try:
        inner: Any = ctx.run(func, *args, **kwargs)
        # PEP 380's expansion of ``yield from``, with each step of ``inner`` in ``ctx``.
        try:
            item = ctx.run(next, inner)
        except StopIteration as stop:
            result = stop.value
        else:
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    ctx.run(inner.close)
                    raise
                except BaseException as exc:
                    try:
                        item = ctx.run(inner.throw, exc)
                    except StopIteration as stop:
                        result = stop.value
                        break
                else:
                    try:
                        item = ctx.run(inner.send, sent)
                    except StopIteration as stop:
                        result = stop.value
                        break
    except BaseException as exc:
        _exit_scope(ctx, cm, exc)
        raise
    _exit_scope(ctx, cm, None)
    return result


class _InContext:
    """Await ``awaitable`` with each of its steps run in ``ctx`` (what an asyncio task does for its coroutine)."""

    __slots__ = ("_awaitable", "_ctx")

    def __init__(self, ctx: contextvars.Context, awaitable: Any) -> None:
        self._ctx = ctx
        self._awaitable = awaitable

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self._awaitable.__await__()
        step, value = steps.send, None
        while True:
            try:
                suspended = self._ctx.run(step, value)
            except StopIteration as stop:
                return stop.value
            try:
                value = yield suspended
                step = steps.send
            except BaseException as exc:  # CancelledError from the task, or a throw()
                step, value = steps.throw, exc


async def _scoped_async_generator(
    open_scope: Callable[[], contextlib.AbstractContextManager[Current]],
    func: Callable[..., AsyncIterator[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> AsyncIterator[Any]:
    ctx, cm = _enter_own_context(open_scope)
    try:
        inner: Any = ctx.run(func, *args, **kwargs)
        try:
            item = await _InContext(ctx, inner.__anext__())
        except StopAsyncIteration:
            pass
        else:
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await _InContext(ctx, inner.aclose())
                    raise
                except BaseException as exc:
                    try:
                        item = await _InContext(ctx, inner.athrow(exc))
                    except StopAsyncIteration:
                        break
                else:
                    try:
                        item = await _InContext(ctx, inner.asend(sent))
                    except StopAsyncIteration:
                        break
    except BaseException as exc:
        _exit_scope(ctx, cm, exc)
        raise
    _exit_scope(ctx, cm, None)


_provider: trace.TracerProvider | None = None


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Start session and run spans on ``provider`` (None: the global provider)."""
    global _provider  # noqa: PLW0603 - set by configure()/the instrumentor
    _provider = provider


def _tracer() -> trace.Tracer:
    return trace.get_tracer(n.INSTRUMENTATION_NAME, __version__, tracer_provider=_provider)


def _normal_exit(exc: BaseException) -> bool:
    """``sys.exit()``, ``sys.exit(0)``: the program ends as it meant to, which is no error.

    ``KeyboardInterrupt`` and a non-zero exit code are not normal exits.
    """
    return isinstance(exc, SystemExit) and exc.code in (0, None)


#: Callbacks that end the requests still reading a response (set by the httpx hooks).
_finishers: list[Callable[[RequestTotals | None], None]] = []


def on_open_requests(finisher: Callable[[RequestTotals | None], None]) -> None:
    """Register ``finisher(totals)``: end the open requests counted in ``totals`` (None: all of them)."""
    _finishers.append(finisher)


def end_open_requests(totals: RequestTotals | None = None) -> None:
    """End the requests still reading a response (of one scope, or all at exit). Never raises."""
    for finisher in _finishers:
        try:
            finisher(totals)
        except Exception:
            _log.debug("alephant_otel: could not end the open requests", exc_info=True)


#: Forks this process line has gone through, counted in each child: a scope opened before
#: the last fork is the parent's, and the parent ends and exports its span, not the child.
_forks = 0


def _count_fork() -> None:
    global _forks  # noqa: PLW0603 - an int, read once per scope
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_count_fork)


@contextlib.contextmanager
def _open_span_scope(ctx: Context, span_name: str, attributes: dict[str, AttributeValue]) -> Iterator[Context]:
    """Start ``span_name`` in ``ctx``, attach it, and close both on exit.

    Yields the attached context. Roll-ups are written to the span just before
    it ends, from the counters stored in the context.
    """
    totals = RequestTotals()
    forks = _forks
    before = otel_context.get_current()
    span = _tracer().start_span(span_name, context=ctx, kind=trace.SpanKind.INTERNAL, attributes=attributes)
    ctx = trace.set_span_in_context(span, ctx)
    ctx = otel_context.set_value(_TOTALS_KEY, (*active_totals(ctx), totals), ctx)
    token = otel_context.attach(ctx)
    try:
        yield ctx
    except BaseException as exc:
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # The process is leaving: a response still being read inside this scope
            # will never finish. End it now, so it counts here and is exported.
            end_open_requests(totals)
        if span.is_recording() and not _normal_exit(exc):
            # Scrubbed again at export; here too, so the live span never holds a key
            # that an exception message quoted (raise_for_status() quotes the URL).
            message = scrub_text(str(exc))
            stacktrace = scrub_text("".join(traceback.format_exception(exc)))
            span.record_exception(exc, {"exception.message": message, "exception.stacktrace": stacktrace})
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"[:512]))
        raise
    finally:
        _detach(token, ctx, before)
        if forks == _forks:  # else a fork's child leaving the parent's scope: the span is the parent's
            if span.is_recording():
                span.set_attributes(totals.attributes())
            span.end()


_warned_cross_exit = False


def _detach(token: contextvars.Token[Context], attached: Context, before: Context) -> None:
    """Detach ``token``; a scope exited in another task or thread than it entered never raises nor logs a traceback.

    OTel's ``detach()`` logs "Failed to detach context" with a traceback at ERROR when
    the token belongs to another context (a framework hook that enters a scope in one
    task and exits it in the next). Here this context is set back to ``before`` when it
    holds what the scope attached (it inherited it: a task or thread started inside the
    scope), and left alone otherwise; the context that entered the scope cannot be
    reached from here, so that is said once.
    """
    global _warned_cross_exit  # noqa: PLW0603 - a flag, set once
    var = getattr(token, "var", None)
    if not isinstance(var, ContextVar):  # a runtime context other than contextvars: OTel's own path
        otel_context.detach(token)
        return
    try:
        var.reset(token)
        return
    except (ValueError, RuntimeError):  # created in another Context, or reset already
        pass
    if otel_context.get_current() is attached:
        otel_context.attach(before)
    if not _warned_cross_exit:
        _warned_cross_exit = True
        _log.warning(
            "alephant_otel: a session() or run() was exited in another asyncio task or thread than the one "
            "that entered it; the span ended, but the task or thread that entered it keeps its ids until it "
            "ends. Enter and exit a scope in the same task (further cases are not logged)"
        )


def _set_entries(ctx: Context, entries: dict[str, str | None]) -> Context:
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, ctx) if value is not None else baggage.remove_baggage(key, ctx)
    return ctx


def _dimension_entries(user_id: str | None, metadata: Mapping[str, str] | None) -> dict[str, str | None]:
    """Baggage entries for a checked user id and metadata (none of them: inherited as they are)."""
    entries: dict[str, str | None] = dict(metadata_entries(check_metadata(metadata))) if metadata is not None else {}
    if user_id is not None:
        entries[n.BAGGAGE_USER_ID] = check_user_id(user_id)
    return entries


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
