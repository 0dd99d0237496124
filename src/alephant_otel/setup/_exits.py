"""How a process ends: SIGTERM with the default handler, fork children, a bounded shutdown.

Three common ways for a process to end lose spans or stall unless something is done:

- ``docker stop`` and Kubernetes send SIGTERM. With the default disposition the
  kernel ends the process at once: no ``atexit``, so what the batch processors
  still hold and a response still being read are lost. When the handler at
  ``configure()`` is the default (only then, and only in the main thread),
  :func:`install_sigterm_flush` puts in one that flushes, bounded, then restores
  the default and sends the signal again, so the process still ends by SIGTERM
  (status -15, 143 in a shell), as whoever sent it expects.
- ``multiprocessing`` children started by fork end with ``os._exit()`` once their
  target returns: no ``atexit`` either. What ``multiprocessing`` does run on that
  path is its ``Finalize`` callbacks (``util._exit_function`` in
  ``Process._bootstrap``), but it clears them in the child first; a callback given
  to ``util.register_after_fork`` runs after that clearing, and registers the
  flush as a finalizer of the child.
- An OTLP endpoint that accepts and never answers holds each export for the
  exporter's timeout (10 s by default), and the SDK shuts processors down one after
  another, the trace file's behind the hanging one. The tracer provider this
  package creates shuts them down side by side and waits at most :data:`SHUTDOWN_S`.

Each wait runs the work in daemon threads joined with a deadline: a flush that
blocks (a hanging collector, or a lock held by the code the signal interrupted)
costs at most the deadline, never the exit. Nothing here raises.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from functools import partial
from types import FrameType
from typing import Final

from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from alephant_otel.context._scope import end_open_requests
from alephant_otel.record._processor import AlephantSpanProcessor

__all__ = [
    "EXIT_FLUSH_S",
    "SHUTDOWN_S",
    "BoundedSpanProcessors",
    "flush_all",
    "install_sigterm_flush",
    "watch_provider",
]

_log = logging.getLogger(__name__)

#: The longest ``shutdown()`` of the tracer provider this package creates takes.
SHUTDOWN_S: Final = 0.5
#: The longest the flush at SIGTERM, or at the end of a fork child, takes.
EXIT_FLUSH_S: Final = 1.0
#: The flush's ``multiprocessing`` finalizer priority: higher runs first, and >= 0 runs
#: before the child waits for children of its own.
_EXIT_PRIORITY: Final = 50

#: The providers this package's processor is on: what a SIGTERM or a fork child's exit flushes.
_providers: weakref.WeakSet[SdkTracerProvider] = weakref.WeakSet()


def watch_provider(provider: SdkTracerProvider) -> None:
    """Flush ``provider`` too at SIGTERM and at a fork child's exit."""
    _providers.add(provider)


# --- bounded, side by side ------------------------------------------------------------


def _run_bounded(calls: Iterable[Callable[[], object]], deadline: float) -> bool:
    """Run ``calls`` side by side; return when all are done or at ``deadline`` (``time.monotonic``).

    Returns True when every call finished in time and none returned False or
    raised. Each runs in a daemon thread, so one that blocks is left behind, not
    waited for. Where no thread can start (Python 3.12.0 to 3.12.2 refuse new
    threads in ``atexit`` handlers) a call runs here, unbounded, as the SDK would.
    """
    results: list[object] = []

    def quietly(call: Callable[[], object]) -> None:
        try:
            results.append(call())
        except Exception:
            results.append(False)
            _log.debug("alephant_otel: an exit step failed", exc_info=True)

    threads: list[threading.Thread] = []
    for call in calls:
        thread = threading.Thread(target=quietly, args=(call,), name="alephant-otel-exit", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            quietly(call)
            continue
        threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads) and False not in results


def _in_two_steps(processors: Iterable[SpanProcessor], step: Callable[[SpanProcessor], object], until: float) -> bool:
    """``step`` on this package's processors, then on all the others at once, by ``until``.

    Ours first: its shutdown ends the requests still being read, whose spans must
    be in the other processors' queues before those flush. It gets half the time.
    """
    processors = list(processors)
    ours = [p for p in processors if isinstance(p, AlephantSpanProcessor)]
    others = [p for p in processors if not isinstance(p, AlephantSpanProcessor)]
    now = time.monotonic()
    done = _run_bounded([partial(step, p) for p in ours], now + (until - now) / 2)
    return _run_bounded([partial(step, p) for p in others], until) and done


class BoundedSpanProcessors(SynchronousMultiSpanProcessor):
    """The span processors of the tracer provider ``configure()`` creates: shut down within :data:`SHUTDOWN_S`.

    The SDK's ``SynchronousMultiSpanProcessor`` shuts its processors down one
    after another, each for as long as it takes: a batch processor whose exporter
    waits on an endpoint that never answers holds the exit for the exporter's
    timeout, and the trace file's processor waits behind it. Here they run side
    by side, and what is still running at the deadline is left to its daemon
    thread. ``force_flush`` likewise keeps to its ``timeout_millis``.
    """

    def __init__(self) -> None:
        """No processors yet: the provider adds them."""
        super().__init__()  # type: ignore[no-untyped-call]

    def shutdown(self) -> None:
        """Shut every processor down at once; return within :data:`SHUTDOWN_S`."""
        _in_two_steps(self._span_processors, lambda p: p.shutdown(), time.monotonic() + SHUTDOWN_S)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush every processor at once; return within ``timeout_millis``.

        Returns:
            Whether all of them flushed in time.
        """
        return _in_two_steps(
            self._span_processors, lambda p: p.force_flush(timeout_millis), time.monotonic() + timeout_millis / 1000
        )


def _processors(provider: SdkTracerProvider) -> tuple[SpanProcessor, ...]:
    found = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
    return tuple(found) if isinstance(found, tuple) else ()


def flush_all(timeout_s: float) -> bool:
    """End the requests still being read, then flush every watched provider; within ``timeout_s``.

    Returns:
        Whether everything was flushed in time. Never raises.
    """
    until = time.monotonic() + timeout_s
    ended = _run_bounded([end_open_requests], time.monotonic() + timeout_s / 2)
    unique = {id(p): p for provider in list(_providers) for p in _processors(provider)}
    millis = int(timeout_s * 1000)
    flushes = [partial(p.force_flush, millis) for p in unique.values() if not isinstance(p, AlephantSpanProcessor)]
    return _run_bounded(flushes, until) and ended


# --- SIGTERM ------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Flush, then end the process by the same signal with the default handler."""
    # The default first: a second SIGTERM while this flushes ends the process at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        flush_all(EXIT_FLUSH_S)
    finally:
        # The exit status stays the signal's (-15, 143 in a shell): what the sender waits for.
        os.kill(os.getpid(), signal.SIGTERM)


def install_sigterm_flush(enabled: bool) -> None:
    """Flush at SIGTERM when the handler now is the default; ``enabled=False`` takes ours back out.

    Only in the main thread (the only one that may set handlers), never over a
    handler the app set (or ``SIG_IGN``, or one set from C). Never raises.
    """
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if enabled and current == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        elif not enabled and current is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError, RuntimeError):
        _log.debug("alephant_otel: could not set the SIGTERM handler", exc_info=True)


# --- fork children --------------------------------------------------------------------------


class _ChildExit:
    """What ``multiprocessing`` keeps the after-fork callback by (its registry holds weak references)."""


_CHILD_EXIT: Final = _ChildExit()
_armed = False


def _flush_child(*_: object) -> None:
    flush_all(EXIT_FLUSH_S)


def _arm_child_exit(_owner: object) -> None:
    """In a ``multiprocessing`` child, after its finalizers were cleared: flush at its exit."""
    try:
        from multiprocessing import util

        util.Finalize(None, _flush_child, exitpriority=_EXIT_PRIORITY)
    except Exception:
        _log.debug("alephant_otel: could not arm the flush at this child's exit", exc_info=True)


def _after_fork_in_child() -> None:
    # A child that multiprocessing started runs its after-fork callbacks next (in
    # Process._bootstrap); any other child never does, and nothing happens.
    global _armed  # noqa: PLW0603 - once per process line: the registry is inherited too
    if _armed:
        return
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    try:
        util.register_after_fork(_CHILD_EXIT, _arm_child_exit)
        _armed = True
    except Exception:
        _log.debug("alephant_otel: could not register the after-fork callback", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
