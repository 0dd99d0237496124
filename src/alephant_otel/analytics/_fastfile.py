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
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from alephant_otel import _names as n
from alephant_otel._jsonfast import orjson_loads
from alephant_otel.analytics._convert import (
    _ALIASES,
    _ERROR_CODES,
    _ROLLUP,
    _SPEC,
    MAX_COST_USD,
    NUMERIC_SLOTS,
    VALID,
    _as_float,
    _as_int,
    _as_str,
    _plain,
    _policy,
    _rollup,
    _scope_spans,
    _service,
    metadata_of,
    span_ids,
)
from alephant_otel.analytics._model import PolicyEvent, Rollup, SpanRecord, usage_unknown

if TYPE_CHECKING:
    from alephant_otel.analytics._reconstruct import SessionBuilder

__all__ = ["ReadStats", "decoder", "read_into", "rows_from_otlp", "worker_count"]

ENV_WORKERS: Final = n.ENV_ANALYTICS_WORKERS
#: Files smaller than this are read in this process (a pool costs more than it saves).
PARALLEL_MIN_BYTES: Final = 16 << 20
_CHUNK_MIN: Final = 4 << 20
_CHUNK_MAX: Final = 32 << 20
_MAX_WORKERS: Final = 8
_EOF: Final = 1 << 62
# OverflowError: a time written as a JSON ``Infinity`` (the json module reads it) cannot be an int.
CORRUPT: Final = (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError)


def _decoder() -> tuple[str, Callable[[bytes], Any]]:
    # orjson: a 1M-span read here takes ~14 s instead of ~16 s with json; it is optional.
    loads = orjson_loads()
    return ("json", json.loads) if loads is None else ("orjson", loads)


#: (name, loads) of the JSON decoder the file reader uses.
decoder: tuple[str, Callable[[bytes], Any]] = _decoder()


# --- one line's spans as rows -------------------------------------------------------

# SpanRecord slots in row order (a non-request span travels as these values).
_SLOTS: Final = SpanRecord.__slots__
_ROW_ROLLUP: Final = 1 + _SLOTS.index("rollup")
_ROW_POLICIES: Final = 1 + _SLOTS.index("policy_events")

# Attribute key -> (tag, slot index in the value list, coercion). Tags: 0 a
# string slot, 1 an int slot, 4 a float slot, 5 any other slot, 2 a roll-up
# (the coercion is its Rollup field), 3 an alias.
_VALUE_SLOTS: Final = tuple(dict.fromkeys(slot for slot, _ in _SPEC.values()))
_V: Final = {slot: i for i, slot in enumerate(_VALUE_SLOTS)}
_TAGS: Final[dict[Any, int]] = {_as_str: 0, _as_int: 1, _as_float: 4}
_KEYS: Final[dict[str, tuple[int, int, Any]]] = {}
for _key, (_slot, _coerce) in _SPEC.items():
    _KEYS[_key] = (_TAGS.get(_coerce, 5), _V[_slot], _coerce)
for _key, _slot in _ROLLUP.items():
    _KEYS[_key] = (2, 0, _slot)
for _key, _slot in _ALIASES.items():
    _KEYS[_key] = (3, _V[_slot], None)
_BLANK: Final[list[Any]] = [None] * len(_VALUE_SLOTS)

_KIND, _SESSION_ID, _SESSION_NAME, _SESSION_PATH = _V["kind"], _V["session_id"], _V["session_name"], _V["session_path"]
_AGENT_ID, _RUN_ID, _RUN_PARENT_ID, _REQUEST_ID = _V["agent_id"], _V["run_id"], _V["run_parent_id"], _V["request_id"]
_OPERATION, _PROVIDER, _REQ_MODEL, _RESP_MODEL = (
    _V["operation"],
    _V["provider"],
    _V["request_model"],
    _V["response_model"],
)
_IN, _OUT, _COST, _COST_SOURCE = _V["input_tokens"], _V["output_tokens"], _V["cost_usd"], _V["cost_source"]
_RETRY, _INTERCEPTED, _STREAMING, _HTTP = _V["retry_attempt"], _V["intercepted"], _V["streaming"], _V["http_status"]
_INCOMPLETE: Final = _V["incomplete"]
_TOOL_NAME: Final = _V["tool_name"]
_ERROR_TYPE: Final = _V["error_type"]
#: (value index, test) of each numeric slot: see _convert.drop_impossible.
_NUMERIC: Final = tuple((_V[slot], ok) for slot, ok in zip(NUMERIC_SLOTS, VALID, strict=True))

_REQUEST: Final = n.SPAN_KIND_REQUEST
_SESSION_NAME_SPAN: Final = n.SESSION_SPAN_NAME
_RUN_PREFIX: Final = n.RUN_SPAN_PREFIX


def _policy_rows(events: Iterable[Any]) -> tuple[tuple[str, str, int | None], ...]:
    out = []
    for ev in events:
        if ev.get("name") == n.EVENT_POLICY:
            p = _policy({kv["key"]: _plain(kv["value"]) for kv in ev.get("attributes") or ()})
            out.append((p.reason, p.code, p.status))
    return tuple(out)


def rows_from_otlp(
    resource_spans: Iterable[Any], rows: list[tuple[Any, ...]], corrupt_values: list[int] | None = None
) -> int:
    """Append a row per session span (and per request span outside any session) of ``resourceSpans`` to ``rows``.

    A request span's row is ``(True, session_id, session_name, *Request
    arguments)`` with the policy events as ``(reason, code, status)`` tuples;
    any other span of a session is ``(False, *SpanRecord slots)`` with the
    roll-up as a tuple. The values are the ones
    :func:`~._convert.records_from_otlp` gives, field by field. Impossible
    numbers (NaN, infinite, negative, boolean, too large) are dropped as
    ``drop_impossible`` does and counted in ``corrupt_values[0]`` when it is given.

    Returns:
        How many spans carried no session id and were not appended (all but request spans).

    Raises:
        KeyError, TypeError, ValueError, AttributeError: The JSON is not
            OTLP; the caller counts the line as corrupt (``rows`` may then
            hold part of it).
    """
    keys = _KEYS
    blank = _BLANK
    plain = _plain
    memo: dict[Any, Any] = {}
    share = memo.setdefault  # one object per distinct string of the line: marshal writes it once
    ignored = 0
    bad = 0
    append = rows.append
    for rs in resource_spans:
        service = _service(rs)
        for ss in _scope_spans(rs):
            for sp in ss.get("spans") or ():
                tid, sid, pid = span_ids(sp)
                name = sp.get("name") or ""
                start = int(sp.get("startTimeUnixNano") or 0)
                end = int(sp.get("endTimeUnixNano") or 0)
                error = False
                message = ""
                status = sp.get("status")
                if status:
                    if status.get("code") in _ERROR_CODES:
                        error = True
                    message = status.get("message") or ""
                v = blank.copy()
                odd = False
                rollup: dict[str, Any] | None = None
                alias: dict[int, Any] | None = None
                for kv in sp.get("attributes") or ():
                    s = keys.get(kv["key"])
                    if s is None:
                        continue
                    value = kv["value"]
                    tag = s[0]
                    # Each branch gives what `coerce(_plain(value) if x is None else x)`
                    # gives (records_from_otlp), the common shapes without the calls.
                    if tag == 0:
                        x = value.get("stringValue")
                        if x.__class__ is str:
                            v[s[1]] = x
                        else:
                            v[s[1]] = _as_str(plain(value) if x is None else x)
                    elif tag == 1:
                        x = value.get("stringValue")
                        if x is None:
                            y = value.get("intValue")
                            # Up to 9 digits cannot exceed MAX_TOKENS; longer ones take the checked road.
                            if y.__class__ is str and len(value) == 1 and len(y) < 10 and y.isascii() and y.isdigit():
                                v[s[1]] = int(y)
                            else:
                                v[s[1]] = _as_int(plain(value))
                                odd = True
                        else:
                            v[s[1]] = _as_int(x)
                            odd = True
                    elif tag == 4:
                        x = value.get("stringValue")
                        if x is None:
                            y = value.get("doubleValue")
                            if y.__class__ is float and len(value) == 1:
                                v[s[1]] = y
                                # Negative, too large, or a JSON NaN/Infinity literal (the json module reads them).
                                if not 0.0 <= y <= MAX_COST_USD:
                                    odd = True
                            else:
                                v[s[1]] = _as_float(plain(value))
                                odd = True
                        else:
                            v[s[1]] = _as_float(x)
                            odd = True
                    elif tag == 5:
                        x = value.get("stringValue")
                        v[s[1]] = s[2](plain(value) if x is None else x)
                    elif tag == 2:
                        if rollup is None:
                            rollup = {}
                        rollup[s[2]] = plain(value)
                    else:
                        if alias is None:
                            alias = {}
                        x = value.get("stringValue")
                        alias[s[1]] = x if x.__class__ is str and len(value) == 1 else _as_str(plain(value))
                if alias:
                    for i, x in alias.items():
                        if v[i] is None:
                            v[i] = x
                if odd:  # a number not in the plain form this library writes: it may be impossible
                    for i, ok in _NUMERIC:
                        if not ok(v[i]):  # see _convert.drop_impossible
                            v[i] = None
                            bad += 1
                session_id = v[_SESSION_ID]
                policies: tuple[tuple[str, str, int | None], ...] = ()
                events = sp.get("events")
                if events:
                    policies = _policy_rows(events)
                    if policies:
                        v[_INTERCEPTED] = True
                roll = None
                if rollup is not None:
                    roll, bad_rollup = _rollup(rollup)
                    bad += bad_rollup
                if session_id is None and v[_KIND] != _REQUEST:
                    ignored += 1
                    continue
                # A request span outside any session travels as a request row with no session id.
                _emit(v, tid, sid, pid, name, start, end, error, message, service, policies, roll, share, append, sp)
    if corrupt_values is not None:
        corrupt_values[0] += bad
    return ignored


def _emit(
    v: list[Any],
    tid: str,
    sid: str,
    pid: str | None,
    name: str,
    start: int,
    end: int,
    error: bool,
    message: str,
    service: str | None,
    policies: tuple[tuple[str, str, int | None], ...],
    roll: Rollup | None,
    share: Callable[[Any, Any], Any],
    append: Callable[[tuple[Any, ...]], None],
    sp: Any,
) -> None:
    """Append the row of one session span (``v``: its values in ``_VALUE_SLOTS`` order)."""
    if v[_RETRY] is None:
        v[_RETRY] = 0
    kind = v[_KIND]
    if kind is None:
        # _convert._finish: the kind of a span written without alephant.span.kind.
        if name == _SESSION_NAME_SPAN:
            kind = n.SPAN_KIND_SESSION
        elif name.startswith(_RUN_PREFIX) and v[_RUN_ID] is not None:
            kind = n.SPAN_KIND_RUN
        elif v[_TOOL_NAME] is not None and name.startswith(n.OPERATION_EXECUTE_TOOL):
            kind = n.SPAN_KIND_TOOL
        elif v[_REQUEST_ID] is not None or v[_IN] is not None or v[_COST] is not None:
            kind = _REQUEST
        v[_KIND] = kind
    if kind == _REQUEST:
        # What Request.from_record makes of the record (it interns the strings
        # that repeat; here they are shared within the line).
        session_id = v[_SESSION_ID]
        run_id = v[_RUN_ID]
        run_parent = v[_RUN_PARENT_ID]
        agent = v[_AGENT_ID]
        path = v[_SESSION_PATH]
        op = v[_OPERATION]
        provider = v[_PROVIDER]
        req_model = v[_REQ_MODEL]
        resp_model = v[_RESP_MODEL]
        cost_source = v[_COST_SOURCE]
        append(
            (
                True,
                share(session_id, session_id),
                v[_SESSION_NAME],
                v[_REQUEST_ID],
                share(tid, tid),
                sid,
                pid,
                share(name, name),
                start,
                end,
                None if run_id is None else share(run_id, run_id),
                None if run_parent is None else share(run_parent, run_parent),
                None if agent is None else share(agent, agent),
                None if path is None else share(path, path),
                None if op is None else share(op, op),
                None if provider is None else share(provider, provider),
                None if req_model is None else share(req_model, req_model),
                None if resp_model is None else share(resp_model, resp_model),
                v[_IN] or 0,
                v[_OUT] or 0,
                v[_COST] or 0.0,
                None if cost_source is None else share(cost_source, cost_source),
                v[_RETRY],
                v[_INTERCEPTED] or bool(policies),
                v[_STREAMING] or False,
                error,
                message,
                v[_HTTP],
                policies,
                v[_INCOMPLETE] or False,
                usage_unknown(op, v[_IN], v[_OUT], v[_COST], error, v[_INTERCEPTED] or policies),
                None if v[_ERROR_TYPE] is None else share(v[_ERROR_TYPE], v[_ERROR_TYPE]),
            )
        )
        return
    fields: dict[str, Any] = dict(zip(_VALUE_SLOTS, v, strict=True))
    fields.update(
        trace_id=tid,
        span_id=sid,
        parent_span_id=pid,
        name=name,
        start_ns=start,
        end_ns=end,
        error=error,
        status_message=message,
        service=service,
        policy_events=policies,
        rollup=None if roll is None else _rollup_row(roll),
        corrupt_values=0,  # counted per line by rows_from_otlp
        # Not a request: read as records_from_otlp does (the request rows never pay for it).
        metadata=metadata_of((kv["key"], _plain(kv["value"])) for kv in sp.get("attributes") or ()),
    )
    if fields["intercepted"] is None:
        fields["intercepted"] = False
    if fields["streaming"] is None:
        fields["streaming"] = False
    if fields["incomplete"] is None:
        fields["incomplete"] = False
    append((False, *(fields[slot] for slot in _SLOTS)))


def _rollup_row(r: Rollup) -> tuple[int, int, int, float, int, int]:
    return (r.requests, r.retries, r.intercepted, r.cost_usd, r.input_tokens, r.output_tokens)


def record_from_row(row: tuple[Any, ...]) -> SpanRecord:
    """The :class:`SpanRecord` a non-request row was made from."""
    rec = SpanRecord.__new__(SpanRecord)
    for slot, value in zip(_SLOTS, row[1:], strict=True):
        setattr(rec, slot, value)
    roll = row[_ROW_ROLLUP]
    if roll is not None:
        rec.rollup = Rollup(*roll)
    policies = row[_ROW_POLICIES]
    if policies:
        rec.policy_events = tuple(PolicyEvent(*p) for p in policies)
    return rec


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
