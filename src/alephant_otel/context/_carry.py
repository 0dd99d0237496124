"""Carry the session/run context where contextvars don't reach by themselves.

Threads started by a ``ThreadPoolExecutor`` don't inherit the caller's
context; a job picked up by a worker process has none at all. The two
helpers here carry it: :func:`bind_context` for threads and callbacks,
:func:`context_carrier`/:func:`attach_carrier` for anything serialised (a
queue message, a database row, an environment variable).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from alephant_otel.context._state import Current, current

__all__ = ["attach_carrier", "bind_context", "context_carrier"]

P = ParamSpec("P")
R = TypeVar("R")
# Explicit W3C propagators, not the global one: a carrier for our own job
# queue must keep alephant baggage even when scoping strips it from HTTP.
_TRACE = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()


def bind_context(func: Callable[P, R]) -> Callable[P, R]:
    """Bind ``func`` to the current context, for another thread or a callback.

    Examples:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> from alephant_otel import bind_context, current, session
        >>> with ThreadPoolExecutor() as pool, session("case-7"):
        ...     pool.submit(bind_context(lambda: current().session_id)).result()
        'case-7'
    """
    captured = contextvars.copy_context()

    @functools.wraps(func)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        # A Context can be entered by one thread at a time: run each call in a copy.
        return captured.copy().run(func, *args, **kwargs)

    return bound


def context_carrier() -> dict[str, str]:
    """The current trace and baggage as W3C headers, for a queue message.

    Examples:
        >>> from alephant_otel import context_carrier, session
        >>> with session("case-7"):
        ...     carrier = context_carrier()
        >>> "alephant.session.id=case-7" in carrier["baggage"]
        True
    """
    carrier: dict[str, str] = {}
    _TRACE.inject(carrier)
    _BAGGAGE.inject(carrier)
    return carrier


@contextlib.contextmanager
def attach_carrier(carrier: Mapping[str, str]) -> Iterator[Current]:
    """Continue the context of :func:`context_carrier` (or any W3C headers).

    Spans started inside join the sender's trace; gateway requests carry the
    sender's session and run ids. Invalid values in the carrier are dropped
    with a warning, as for any inbound baggage.

    Examples:
        >>> from alephant_otel import attach_carrier, current
        >>> with attach_carrier({"baggage": "alephant.session.id=case-7"}):
        ...     current().session_id
        'case-7'
    """
    ctx = _BAGGAGE.extract(carrier, context=_TRACE.extract(carrier))
    token = otel_context.attach(ctx)
    try:
        yield current()
    finally:
        otel_context.detach(token)
