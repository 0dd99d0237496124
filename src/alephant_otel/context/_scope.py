"""What ``session()``, ``run()`` and ``tool()`` share: one object that is a context manager and a
decorator (sync and async), the span each opens, and the requests still open when it ends.
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
from typing import Any, Final, TypeVar, cast

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel._version import __version__
from alephant_otel.context._dimensions import (
    check_metadata,
    check_user_id,
    metadata_entries,
)
from alephant_otel.context._state import _TOTALS_KEY, Current, active_totals
from alephant_otel.context._totals import RequestTotals
from alephant_otel.redact._scrub import scrub_text

__all__ = ["end_open_requests", "on_open_requests", "use_instruments", "use_tracer_provider"]

_log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


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


_provider: trace.TracerProvider | None = None


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Start session and run spans on ``provider`` (None: the global provider)."""
    global _provider  # noqa: PLW0603 - set by configure()/the instrumentor
    _provider = provider


#: The configured bridge's instruments (``record._metrics.Instruments``), on which ``tool()``
#: counts its calls; set by the set-up, as this stage may not import the record stage.
instruments: Any = None


def use_instruments(meters: Any) -> None:
    """Count tool calls on these instruments from now on (``None``: not at all)."""
    global instruments  # noqa: PLW0603 - one process-wide set of meters, swapped whole
    instruments = meters


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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_count_fork)
