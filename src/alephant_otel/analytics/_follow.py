"""Following a growing trace file: the sessions in it, re-read only where it grew.

The live views (``alephant-otel ui`` on a trace file, ``sessions list
--follow``) ask "what changed?" every second or so. :class:`TraceFollower`
keeps one :class:`SessionBuilder` and the byte offset up to which the file
was read; :meth:`TraceFollower.poll` feeds the complete lines appended since
(the same row parser as a full read) and rebuilds the session trees. A last
line without its newline is a writer mid-write: it is left for the next poll.

The file is read whole again when it was replaced (another inode), shrank,
is compressed, or was rewritten in place. An editor or ``cp`` over it keeps
the inode and may keep or grow the size, so: a new mtime with the same size
is never an append and means a rewrite; and each poll compares the bytes
already read at the file's head and just before the read offset (4 KiB
each) with what the file holds now, which catches a rewrite that grew the
file, or one within the same mtime tick (file system clocks are coarse). A
rewrite that grows the file and keeps both of those windows byte for byte
would pass for an append: telling it apart would mean hashing the whole file
on every poll.

:attr:`TraceFollower.version` is a generation tag: it changes exactly when
the sessions returned change (new bytes read, the file rewritten, or a
session turning from active to completed as the clock moves). Server-side
caches are keyed by it, never by an object's id, which Python reuses.
"""

from __future__ import annotations

import gc
import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._filesource import FileSource
from alephant_otel.analytics._model import Session
from alephant_otel.analytics._query import SessionSet
from alephant_otel.analytics._reconstruct import DEFAULT_ACTIVE_WINDOW_S, SessionBuilder
from alephant_otel.analytics._spansource import SourceError, TraceFileMissing
from alephant_otel.analytics._tracereader import is_compressed, open_trace_file

__all__ = ["TraceFollower"]

_TAIL_BLOCK = 1 << 16
#: Bytes compared at the head of the file and just before the read offset to notice a rewrite.
_WINDOW = 4096
#: Distinguishes the followers of one process (and, with the pid, of a restarted server), so a
#: page loaded from one never mistakes another's generation for its own.
_FOLLOWERS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class _Stamp:
    dev: int
    ino: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class _Print:
    """The bytes of the part already read that a rewrite would change: its head and its end."""

    end: int
    head: bytes
    tail: bytes


def _fingerprint(fd: int, end: int) -> _Print:
    head_len = min(_WINDOW, end)
    tail_start = max(head_len, end - _WINDOW)
    return _Print(end, _pread(fd, head_len, 0), _pread(fd, end - tail_start, tail_start))


def _pread(fd: int, size: int, offset: int) -> bytes:
    # os.pread on a raw descriptor: each poll checks the file, and a buffered file object
    # doubled the cost of an unchanged poll. Windows has no pread.
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


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


def _statuses(sessions: list[Session]) -> list[str]:
    return [s.status for s in sessions]


class TraceFollower:
    """The sessions of one trace file, kept current as the file grows.

    Thread-safe: :meth:`poll` may be called from several server threads.

    Args:
        path: The trace file.
        active_window_s: Recent-activity window for ``active`` (as in :func:`read_sessions`).
        missing_hint: Said after "no trace file at PATH" while it does not exist.

    Raises:
        SourceError: From :meth:`poll`, when the file cannot be read.
    """

    def __init__(
        self, path: str | Path, *, active_window_s: float = DEFAULT_ACTIVE_WINDOW_S, missing_hint: str = ""
    ) -> None:
        self.path = Path(path).expanduser()
        self.missing_hint = missing_hint
        self.description = str(self.path)
        self.active_window_s = active_window_s
        self.corrupt = 0
        self._lock = threading.Lock()
        self._builder = SessionBuilder()
        self._offset = 0
        self._stamp: _Stamp | None = None
        self._print: _Print | None = None
        self._compressed = False
        self._sessions: list[Session] = []
        self._built_at = 0.0
        self._tag = f"{os.getpid():x}.{next(_FOLLOWERS):x}"
        self._generation = 0

    @property
    def version(self) -> str:
        """A tag that changes exactly when the sessions :meth:`poll` returns change (last poll's view)."""
        return f"{self._tag}.{self._generation:x}"

    def read(self) -> tuple[str, SessionSet]:
        """:meth:`poll` and the :attr:`version` of its answer, taken together.

        Raises:
            SourceError: The file cannot be read.
        """
        with self._lock:
            result = self._poll()
            return self.version, result

    def poll(self) -> SessionSet:
        """Read what was appended since the last poll; the sessions of the whole file.

        Raises:
            SourceError: The file cannot be read.
        """
        with self._lock:
            return self._poll()

    def _stat(self) -> _Stamp:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise TraceFileMissing(self.path, self.missing_hint) from None
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return _Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _result(self) -> SessionSet:
        return SessionSet(self._sessions, self.description, self._builder.spans, self.corrupt)

    def _poll(self) -> SessionSet:
        stamp = self._stat()
        old = self._stamp
        replaced = (
            old is None
            or (old.dev, old.ino) != (stamp.dev, stamp.ino)
            or stamp.size < self._offset
            # Written to without growing: never an append (a `touch` costs one needless read).
            or (stamp.size == old.size and stamp.mtime_ns != old.mtime_ns)
            # Same size and mtime (two writes within one mtime tick) or grown: the bytes tell.
            or not self._same_bytes()
        )
        if not replaced and stamp == old:
            # Unchanged. Only the clock can still move a session from active to completed:
            # rebuild (a cost that grows with the file) only then, at most once a second.
            now = time.monotonic()
            if any(s.status == "active" for s in self._sessions) and now - self._built_at >= 1.0:
                rebuilt = self._builder.build(active_window_s=self.active_window_s)
                self._built_at = now
                if _statuses(rebuilt) != _statuses(self._sessions):
                    self._sessions = rebuilt
                    self._generation += 1
            return self._result()
        # As in read_sessions: the read makes many small objects and no cycles; the cyclic
        # GC rescanning them all, again and again, doubled the time.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            if replaced or self._compressed:
                self._full_read(stamp)
            elif not self._read_tail(stamp.size):
                # Only part of a line was added (a writer mid-write): nothing to show yet.
                self._stamp = stamp
                return self._result()
            self._sessions = self._builder.build(active_window_s=self.active_window_s)
        finally:
            if gc_was_enabled:
                gc.enable()
        self._stamp = stamp
        self._built_at = time.monotonic()
        # Every read that got here may have changed the sessions: a new generation, so no cache
        # keyed by the old one answers with what the file held before.
        self._generation += 1
        return self._result()

    def _same_bytes(self) -> bool:
        """Whether the part of the file already read still holds the bytes it held then."""
        fp = self._print
        if fp is None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                return _fingerprint(fd, fp.end) == fp
            finally:
                os.close(fd)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def _full_read(self, stamp: _Stamp) -> None:
        self._builder = SessionBuilder()
        self.corrupt = 0
        self._offset = 0
        self._print = None
        try:
            with open_trace_file(self.path) as fh:
                self._compressed = is_compressed(fh)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if self._compressed:
            # A rotated (compressed) file cannot be read from an offset: it is read whole each time it changes.
            try:
                with open(self.path, "rb") as raw:
                    # Taken before the read: a rewrite during it then shows as a change at the next poll.
                    self._print = _fingerprint(raw.fileno(), stamp.size)
            except OSError as exc:
                raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
            source = FileSource(self.path, workers=1)
            source.read_into(self._builder)
            self.corrupt = source.corrupt
            return
        self._read_tail(stamp.size)

    def _read_tail(self, size: int) -> bool:
        """Feed the complete lines in ``[offset, size)``; whether there were any."""
        try:
            with open(self.path, "rb") as fh:
                end = _last_newline_end(fh, self._offset, size)
                if end > self._offset:
                    # Taken before the lines are parsed: a rewrite racing the read then shows as a
                    # change at the next poll instead of being taken for what was read.
                    self._print = _fingerprint(fh.fileno(), end)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if end <= self._offset:
            return False
        builder = self._builder

        def sink(rows: list[tuple[Any, ...]], ignored: int) -> None:
            _fastfile._feed(builder, rows, ignored)

        stats = _fastfile.read_chunk(str(self.path), self._offset, end, sink)
        self.corrupt += stats.corrupt
        self._offset = end
        return True
