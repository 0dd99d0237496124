"""Watch a response body as the caller reads it, without delaying it.

``opentelemetry-instrumentation-httpx`` ends its span when the response
headers arrive; the body (streamed or not) is read by the caller afterwards.
Usage, model and policy information live in that body, so the response hook
hands the transport's byte stream to :func:`watch_stream`, which re-classes
the stream object in place to a subclass that passes every chunk straight
through while keeping a bounded copy, and calls back once when the body ends:
at end of stream, on close, on error, or when the stream is garbage collected
unread.

Re-classing (rather than wrapping) keeps the very object the ``Response``
already holds, so nothing in httpx/httpx2 has to be patched, and works for any
stream class that implements the public ``SyncByteStream``/``AsyncByteStream``
protocol (``__iter__``/``close``, ``__aiter__``/``aclose``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final

__all__ = ["BodyWatcher", "watch_stream"]

_log = logging.getLogger(__name__)

#: Bodies up to this size are kept whole (a JSON reply must be whole to parse).
WHOLE_LIMIT: Final = 1 << 20
#: Past WHOLE_LIMIT only the head (model, id, Anthropic message_start) and the
#: tail (final usage, finish reason) of a stream are kept.
HEAD_BYTES: Final = 64 << 10
TAIL_BYTES: Final = 256 << 10

#: on_done(body, whole, complete, error): called once when the body ends.
DoneCallback = Callable[[bytes, bool, bool, "BaseException | None"], None]
_ATTR: Final = "_alephant_watcher"


class BodyWatcher:
    """Keeps a bounded copy of a body and reports it once when it ends."""

    __slots__ = ("_chunks", "_done", "_head", "_on_done", "_size", "_tail", "_tail_size")

    def __init__(self, on_done: DoneCallback) -> None:
        self._on_done = on_done
        self._chunks: list[bytes] = []
        self._size = 0
        self._head: bytes | None = None
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._done = False

    def feed(self, chunk: bytes) -> None:
        """Record one chunk: O(1) amortised, no decoding."""
        self.take(chunk, self._size + len(chunk))

    def take(self, chunk: bytes, size: int) -> None:
        """Record ``chunk``, ``size`` being the body's length up to and including it.

        The stream loops append chunks to ``_chunks`` themselves while the body
        still fits whole (a method call per chunk was most of a long stream's
        overhead) and call this from the first chunk that does not.
        """
        self._size = size
        if self._head is None:
            self._chunks.append(chunk)
            if size <= WHOLE_LIMIT:
                return
            # Switch to head + tail: the body is too large to keep whole.
            joined = b"".join(self._chunks)
            self._chunks = []
            self._head = joined[:HEAD_BYTES]
            rest = joined[-TAIL_BYTES:]
            self._tail.append(rest)
            self._tail_size = len(rest)
            return
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= TAIL_BYTES:
            self._tail_size -= len(self._tail.popleft())

    @property
    def done(self) -> bool:
        """Whether the body has been reported."""
        return self._done

    def finish(self, complete: bool, error: BaseException | None = None) -> None:
        """Report the body (only the first call counts). Never raises.

        The stream loops pass the arguments by position: once per body and again on
        close, where a keyword argument costs more than the call does.
        """
        if self._done:
            return
        self._done = True
        try:
            if self._head is None:
                body, whole = b"".join(self._chunks), True
            else:
                body, whole = self._head + b"\n\n" + b"".join(self._tail)[-TAIL_BYTES:], False
            self._chunks = []
            self._tail.clear()
            on_done, self._on_done = self._on_done, _done_already
            # Dropped first: httpx keeps a response and its stream (which holds this
            # watcher) in a reference cycle; the callback holds the request's span.
            on_done(body, whole, complete, error)
        except Exception:
            _log.exception("alephant_otel: failed to record a response body; the request is unaffected")


def _done_already(body: bytes, whole: bool, complete: bool, error: BaseException | None) -> None:
    """The callback of a watcher that has reported its body."""


def _watcher_of(stream: object) -> BodyWatcher | None:
    return getattr(stream, _ATTR, None)


def _make_sync(base: Any) -> type:
    base_del = _base_del(base)

    class WatchedSyncStream(base):  # type: ignore[misc]
        __slots__ = ()

        def __iter__(self) -> Iterator[bytes]:
            watcher = _watcher_of(self)
            if watcher is None:  # pragma: no cover - only if the attribute was removed
                yield from base.__iter__(self)
                return
            # BodyWatcher.take, inlined while the body still fits whole.
            append, size = watcher._chunks.append, watcher._size
            try:
                for chunk in base.__iter__(self):
                    size += len(chunk)
                    if size <= WHOLE_LIMIT:
                        append(chunk)
                    else:
                        watcher.take(chunk, size)
                    yield chunk
            except BaseException as exc:
                # GeneratorExit too: the caller stopped reading early.
                watcher.finish(False, exc)
                raise
            watcher.finish(True)

        def close(self) -> None:
            try:
                base.close(self)
            finally:
                watcher = _watcher_of(self)
                if watcher is not None:
                    watcher.finish(False)

        def __del__(self) -> None:
            _collected(self, base_del)

    WatchedSyncStream.__name__ = WatchedSyncStream.__qualname__ = f"Watched{base.__name__}"
    return WatchedSyncStream


def _make_async(base: Any) -> type:
    base_del = _base_del(base)

    class WatchedAsyncStream(base):  # type: ignore[misc]
        __slots__ = ()

        async def __aiter__(self) -> AsyncIterator[bytes]:
            watcher = _watcher_of(self)
            if watcher is None:  # pragma: no cover
                async for chunk in base.__aiter__(self):
                    yield chunk
                return
            append, size = watcher._chunks.append, watcher._size  # see the sync variant
            try:
                async for chunk in base.__aiter__(self):
                    size += len(chunk)
                    if size <= WHOLE_LIMIT:
                        append(chunk)
                    else:
                        watcher.take(chunk, size)
                    yield chunk
            except BaseException as exc:
                watcher.finish(False, exc)
                raise
            watcher.finish(True)

        async def aclose(self) -> None:
            try:
                await base.aclose(self)
            finally:
                watcher = _watcher_of(self)
                if watcher is not None:
                    watcher.finish(False)

        def __del__(self) -> None:
            _collected(self, base_del)

    WatchedAsyncStream.__name__ = WatchedAsyncStream.__qualname__ = f"Watched{base.__name__}"
    return WatchedAsyncStream


_classes: dict[type, type] = {}


def _base_del(base: type) -> Callable[[Any], None] | None:
    """The ``__del__`` of a stream class, looked up once: a miss raises and formats an ``AttributeError``."""
    found: Callable[[Any], None] | None = getattr(base, "__del__", None)
    return found


def _collected(stream: object, base_del: Callable[[Any], None] | None) -> None:
    """A watched stream is being collected: a body nobody read or closed still ends its span.

    ``__del__`` on the watched class rather than a ``weakref.finalize`` per
    stream (~2 µs each). The GC calls it before clearing the stream's
    attributes (PEP 442), so the watcher is still reachable even when stream
    and watcher are collected together.
    """
    try:
        watcher = _watcher_of(stream)
        if watcher is not None:
            watcher.finish(False)
    finally:
        if base_del is not None:
            base_del(stream)


def watch_stream(stream: Any, watcher: BodyWatcher) -> bool:
    """Make ``stream`` report its body to ``watcher``; False if it can't be watched."""
    cls = type(stream)
    if cls in _classes.values():
        return False  # already watched (a response hook ran twice)
    sub = _classes.get(cls)
    if sub is None:
        if hasattr(cls, "__aiter__") and hasattr(cls, "aclose"):
            sub = _make_async(cls)
        elif hasattr(cls, "__iter__") and hasattr(cls, "close"):
            sub = _make_sync(cls)
        else:
            return False
        _classes[cls] = sub
    try:
        setattr(stream, _ATTR, watcher)
        stream.__class__ = sub
    except (TypeError, AttributeError):
        # A stream class with __slots__ or a C layout: leave it untouched.
        return False
    return True
