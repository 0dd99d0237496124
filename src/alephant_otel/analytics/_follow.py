"""Following a growing trace file: the sessions in it, re-read only where it grew.

The live views (``alephant-otel ui`` on a trace file, ``sessions list
--follow``) ask "what changed?" every second or so. :class:`TraceFollower`
keeps one :class:`SessionBuilder` and the byte offset up to which the file
was read; :meth:`TraceFollower.poll` feeds the complete lines appended since
(the same row parser as a full read) and rebuilds the session trees. The
file is read whole again only when it shrank or was replaced (rotation,
truncation) or is compressed. A last line without its newline is a writer
mid-write: it is left for the next poll.

:attr:`TraceFollower.version` changes whenever the file does (its identity,
size and mtime): a cheap tag for clients polling for changes.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from alephant_otel._tracereader import is_compressed, open_trace_file
from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._model import Session
from alephant_otel.analytics._query import SessionSet
from alephant_otel.analytics._reconstruct import DEFAULT_ACTIVE_WINDOW_S, SessionBuilder
from alephant_otel.analytics._sources import FileSource, SourceError

__all__ = ["TraceFollower"]

_TAIL_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class _Stamp:
    dev: int
    ino: int
    size: int
    mtime_ns: int


def _last_newline_end(fh: BinaryIO, start: int, size: int) -> int:
    """The offset just past the last ``\\n`` in ``[start, size)``, or ``start`` when none."""
    pos = size
    while pos > start:
        block_start = max(start, pos - _TAIL_BLOCK)
        fh.seek(block_start)
        block = fh.read(pos - block_start)
        i = block.rfind(b"\n")
        if i >= 0:
            return block_start + i + 1
        pos = block_start
    return start


class TraceFollower:
    """The sessions of one trace file, kept current as the file grows.

    Thread-safe: :meth:`poll` may be called from several server threads.

    Args:
        path: The trace file.
        active_window_s: Recent-activity window for ``active`` (as in :func:`read_sessions`).

    Raises:
        SourceError: From :meth:`poll`, when the file cannot be read.
    """

    def __init__(self, path: str | Path, *, active_window_s: float = DEFAULT_ACTIVE_WINDOW_S) -> None:
        self.path = Path(path).expanduser()
        self.description = str(self.path)
        self.active_window_s = active_window_s
        self.corrupt = 0
        self._lock = threading.Lock()
        self._builder = SessionBuilder()
        self._offset = 0
        self._stamp: _Stamp | None = None
        self._compressed = False
        self._sessions: list[Session] = []
        self._built_for: _Stamp | None = None
        self._built_at = 0.0

    @property
    def version(self) -> str:
        """A tag that changes when the file does (last poll's view)."""
        s = self._stamp
        return "none" if s is None else f"{s.ino:x}-{s.size:x}-{s.mtime_ns:x}"

    def _stat(self) -> _Stamp:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise SourceError(f"no trace file at {self.path} (set ALEPHANT_TRACE_FILE or pass --source)") from None
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return _Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def poll(self) -> SessionSet:
        """Read what was appended since the last poll; the sessions of the whole file."""
        with self._lock:
            stamp = self._stat()
            old = self._stamp
            if old is not None and stamp == old and self._built_for == stamp:
                # Unchanged. Only the clock can still move a session from active to completed:
                # rebuild (a cost that grows with the file) only then, at most once a second.
                now = time.monotonic()
                if any(s.status == "active" for s in self._sessions) and now - self._built_at >= 1.0:
                    self._sessions = self._builder.build(active_window_s=self.active_window_s)
                    self._built_at = now
                return SessionSet(self._sessions, self.description, self._builder.spans, self.corrupt)
            replaced = old is None or (old.dev, old.ino) != (stamp.dev, stamp.ino) or stamp.size < self._offset
            # As in read_sessions: the read makes many small objects and no cycles; the cyclic
            # GC rescanning them all, again and again, doubled the time.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                if replaced or self._compressed:
                    self._full_read()
                else:
                    self._read_tail(stamp.size)
                self._sessions = self._builder.build(active_window_s=self.active_window_s)
            finally:
                if gc_was_enabled:
                    gc.enable()
            self._stamp = stamp
            self._built_for = stamp
            self._built_at = time.monotonic()
            return SessionSet(self._sessions, self.description, self._builder.spans, self.corrupt)

    def _full_read(self) -> None:
        self._builder = SessionBuilder()
        self.corrupt = 0
        self._offset = 0
        try:
            with open_trace_file(self.path) as fh:
                self._compressed = is_compressed(fh)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if self._compressed:
            # A rotated (compressed) file cannot be read from an offset: it is read whole each time it changes.
            source = FileSource(self.path, workers=1)
            source.read_into(self._builder)
            self.corrupt = source.corrupt
            return
        self._read_tail(self._stat().size)

    def _read_tail(self, size: int) -> None:
        try:
            with open(self.path, "rb") as fh:
                end = _last_newline_end(fh, self._offset, size)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if end <= self._offset:
            return
        builder = self._builder

        def sink(rows: list[tuple[Any, ...]], ignored: int) -> None:
            _fastfile._feed(builder, rows, ignored)

        stats = _fastfile.read_chunk(str(self.path), self._offset, end, sink)
        self.corrupt += stats.corrupt
        self._offset = end
