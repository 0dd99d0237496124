"""The fast path from an OTLP/JSON-lines trace file to a :class:`SessionBuilder`.

``sessions list`` over a big file spends its time in three places: decoding
the JSON, turning each span into the few fields the analytics read, and
building the session trees. This module makes the first two cheaper and
runs them in parallel:

- **Rows, not records.** :func:`rows_from_otlp` reads one line's
  ``resourceSpans`` the way :func:`~._convert.records_from_otlp` does (the same
  attribute table, coercions and corrupt-line rules) but writes plain tuples:
  a request span becomes the arguments of its :class:`Request` (what
  :meth:`Request.from_record` would pass), any other span of a session the
  slots of its :class:`SpanRecord`. Request spans outside any session are
  request rows with no session id; other spans outside any session are only
  counted. Tuples of str/int/float are what ``marshal`` moves between
  processes fastest.
- **Byte ranges in worker processes.** :func:`read_into` splits a big file
  into chunks on line boundaries and parses them in a ``fork`` process pool,
  keeping a few chunks in flight; the parent feeds the rows into the builder
  in file order, so the result is the same as a serial read. Small files,
  one CPU, ``ALEPHANT_ANALYTICS_WORKERS=1``, platforms without ``fork`` and a
  pool that cannot start or dies fall back to reading in this process.
- **orjson when installed** (``pip install 'alephant-otel[fast]'``), else
  ``json``: :data:`decoder` is chosen once at import; tests swap it.

The generic path (:meth:`FileSource.spans`, which yields :class:`SpanRecord`)
is unchanged; tests check both give identical sessions.
"""

from __future__ import annotations

import json
import marshal
import os
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from alephant_otel import _names as n
from alephant_otel._jsonfast import orjson_loads
from alephant_otel.analytics._rows import CORRUPT, record_from_row, rows_from_otlp

if TYPE_CHECKING:
    from alephant_otel.analytics._reconstruct import SessionBuilder

__all__ = ["CORRUPT", "ReadStats", "decoder", "read_into", "record_from_row", "rows_from_otlp", "worker_count"]

ENV_WORKERS: Final = n.ENV_ANALYTICS_WORKERS
#: Files smaller than this are read in this process (a pool costs more than it saves).
PARALLEL_MIN_BYTES: Final = 16 << 20
_CHUNK_MIN: Final = 4 << 20
_CHUNK_MAX: Final = 32 << 20
_MAX_WORKERS: Final = 8
_EOF: Final = 1 << 62


def _decoder() -> tuple[str, Callable[[bytes], Any]]:
    # orjson: a 1M-span read here takes ~14 s instead of ~16 s with json; it is optional.
    loads = orjson_loads()
    return ("json", json.loads) if loads is None else ("orjson", loads)


#: (name, loads) of the JSON decoder the file reader uses.
decoder: tuple[str, Callable[[bytes], Any]] = _decoder()


# --- reading a byte range -------------------------------------------------------------


@dataclass(slots=True)
class ReadStats:
    """What reading the file, or one byte range of it, counted (the :class:`FileSource` attributes)."""

    lines: int = 0
    corrupt: int = 0
    incomplete_tail: bool = False
    #: Numbers dropped as corrupt (impossible: NaN, infinite, negative, ...) in lines that were read.
    corrupt_values: int = 0

    def take(self, lines: int, corrupt: int, incomplete_tail: bool, corrupt_values: int = 0) -> None:
        """Add the counts of one more chunk."""
        self.lines += lines
        self.corrupt += corrupt
        self.incomplete_tail = self.incomplete_tail or incomplete_tail
        self.corrupt_values += corrupt_values


#: Takes one line's rows and how many of its spans had no session.
Sink = Callable[[list[tuple[Any, ...]], int], None]


def read_chunk(
    path: str,
    start: int,
    end: int,
    sink: Sink,
    progress: Callable[[int], None] | None = None,
) -> ReadStats:
    """Pass the rows of each line that begins in ``[start, end)`` of the file to ``sink``.

    Lines that are not JSON or not OTLP are counted in ``corrupt``; a last
    line without its newline that does not parse sets ``incomplete_tail``.
    ``progress`` is called with the bytes read so far.

    Each line's JSON is dropped before the next is parsed, and its rows go
    out at once: the memory the decoder allocates is reused line after line
    (keeping rows of many lines around made the parse about twice as slow).
    """
    loads = decoder[1]
    result = ReadStats()
    with open(path, "rb") as fh:
        pos = start
        if start > 0:
            fh.seek(start - 1)
            pos = start - 1 + len(fh.readline())  # the line holding byte start-1 belongs to the chunk before
        step = 1 << 20
        next_report = pos + step
        while pos < end:
            line = fh.readline()
            if not line:
                break
            pos += len(line)
            if progress is not None and pos >= next_report:
                progress(pos)
                next_report = pos + step
            if not line.strip():
                continue
            result.lines += 1
            rows: list[tuple[Any, ...]] = []
            bad = [0]
            try:
                doc = loads(line)
                resource_spans = doc["resourceSpans"] if "resourceSpans" in doc else doc["resource_spans"]
                ignored = rows_from_otlp(resource_spans, rows, bad)
            except CORRUPT:
                if line.endswith(b"\n"):
                    result.corrupt += 1
                else:
                    result.incomplete_tail = True
                continue
            del doc, resource_spans
            result.corrupt_values += bad[0]
            sink(rows, ignored)
    return result


def _read_chunk_marshalled(
    path: str, start: int, end: int, progress: Callable[[int], None] | None = None
) -> tuple[list[bytes], int, int, int, bool, int]:
    # Each line's rows as a marshal blob: compact, and faster than pickling tuples
    # back from a worker.
    blobs: list[bytes] = []
    ignored = 0
    dumps = marshal.dumps

    def sink(rows: list[tuple[Any, ...]], n_ignored: int) -> None:
        nonlocal ignored
        ignored += n_ignored
        if rows:
            blobs.append(dumps(rows))

    r = read_chunk(path, start, end, sink, progress)
    return blobs, ignored, r.lines, r.corrupt, r.incomplete_tail, r.corrupt_values


def _pool_task(path: str, start: int, end: int) -> tuple[list[bytes], int, int, int, bool, int]:
    """What a worker runs for one chunk."""
    return _read_chunk_marshalled(path, start, end)


def _worker_init() -> None:
    import gc

    # The worker allocates and frees the parsed JSON; there are no cycles to find.
    gc.disable()


# --- the whole file -------------------------------------------------------------------


def worker_count() -> int:
    """Worker processes for a big file: ``ALEPHANT_ANALYTICS_WORKERS``, else the usable CPUs (at most 8)."""
    env = os.environ.get(ENV_WORKERS, "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_WORKERS))


def _chunks(size: int, workers: int) -> list[tuple[int, int]]:
    chunk = min(max(size // (workers * 8), _CHUNK_MIN), _CHUNK_MAX)
    out = [(s, min(s + chunk, size)) for s in range(0, size, chunk)] or [(0, 0)]
    # The last chunk reads to the end of the file, as it is when it gets there
    # (a writer may have appended since the size was taken).
    out[-1] = (out[-1][0], _EOF)
    return out


def _feed(builder: SessionBuilder, rows: list[tuple[Any, ...]], ignored: int) -> None:
    add_request = builder._add_request_row
    add = builder.add
    for row in rows:
        if row[0]:
            add_request(row)
        else:
            add(record_from_row(row))
    builder.spans += ignored
    builder.ignored += ignored


def _feed_blobs(builder: SessionBuilder, blobs: list[bytes], ignored: int) -> None:
    for blob in blobs:
        _feed(builder, marshal.loads(blob), 0)  # noqa: S302 (written by _read_chunk_marshalled of this read)
    _feed(builder, [], ignored)


def read_into(
    path: Path,
    size: int,
    builder: SessionBuilder,
    progress: Callable[[int, int | None], None] | None = None,
    *,
    workers: int | None = None,
) -> ReadStats:
    """Feed every span of the trace file at ``path`` into ``builder``, in file order.

    Big files are parsed in ``workers`` processes (default :func:`worker_count`);
    the sessions built are the same as a serial read's.
    """
    stats = ReadStats()
    nworkers = worker_count() if workers is None else max(1, workers)
    chunks = _chunks(size, nworkers)
    done = 0
    if nworkers > 1 and len(chunks) > 1 and size >= PARALLEL_MIN_BYTES and _can_fork():
        done = _read_parallel(str(path), chunks, nworkers, builder, stats, size, progress)
    # Serially: everything (small file, no pool) or what the pool did not finish.
    report = None if progress is None else (lambda pos: progress(pos, size))
    for start, end in chunks:
        if end <= done:
            continue
        # Parse the whole chunk first, then build: as in the pool, the decoder's
        # memory is reused line after line instead of interleaving with what the
        # builder keeps (measured: that interleaving made a serial read 1.9x slower).
        blobs, ignored, lines, corrupt, tail, bad = _read_chunk_marshalled(str(path), start, end, report)
        _feed_blobs(builder, blobs, ignored)
        del blobs
        stats.take(lines, corrupt, tail, bad)
        done = end
    if progress is not None:
        progress(size, size)
    return stats


def _can_fork() -> bool:
    # fork: the workers inherit the loaded modules and the decoder choice, and
    # nothing re-imports __main__ (spawn/forkserver would run an unguarded script again).
    # Only from a single-threaded process (the CLI): forking while another thread
    # holds a lock (an exporter's, logging's) can deadlock the child, and Python
    # 3.12+ warns about it. A library caller with threads reads serially.
    import multiprocessing
    import threading

    return (
        sys.platform == "linux" and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    )


def _read_parallel(
    path: str,
    chunks: list[tuple[int, int]],
    workers: int,
    builder: SessionBuilder,
    stats: ReadStats,
    size: int,
    progress: Callable[[int, int | None], None] | None,
) -> int:
    """Parse ``chunks`` in a process pool; returns the byte offset fed up to."""
    import multiprocessing

    done = 0
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init)
    except (OSError, ValueError, NotImplementedError, ImportError):
        return 0
    pending: deque[tuple[int, Future[tuple[list[bytes], int, int, int, bool, int]]]] = deque()
    todo = iter(chunks)
    try:
        # A few chunks per worker in flight: the workers never wait for the
        # parent, and at most that many chunks' rows are held at once.
        for start, end in todo:
            pending.append((end, pool.submit(_pool_task, path, start, end)))
            if len(pending) >= workers * 2:
                break
        while pending:
            end, fut = pending.popleft()
            blobs, ignored, lines, corrupt, tail, bad = fut.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt[1], pool.submit(_pool_task, path, *nxt)))
            _feed_blobs(builder, blobs, ignored)
            del blobs
            stats.take(lines, corrupt, tail, bad)
            done = end
            if progress is not None:
                progress(min(done, size), size)
    except (BrokenProcessPool, OSError):
        # A worker died or the pool could not start: the caller reads the rest here.
        pass
    finally:
        for _, fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
    return done
