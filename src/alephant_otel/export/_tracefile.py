"""The local trace file: OTLP/JSON lines, the OpenTelemetry Collector's ``file`` exporter format.

Each line is one ``ExportTraceServiceRequest`` in the OTLP/JSON encoding
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): camelCase
keys, trace and span ids as lowercase hex, 64-bit integers as decimal strings,
enums as integers, fields at their default value left out, followed by ``\\n``.
That is what the Collector's ``file`` exporter writes with ``format: json``
(its ``pdata`` JSON marshaller), so a file from either side can be read by the
other and by ``alephant-otel sessions``.

The encoding goes through the official OTLP protobuf encoder and
``google.protobuf.json_format``; only the ids are rewritten (protobuf JSON
gives ``bytes`` as base64, OTLP/JSON wants hex). Two cosmetic differences with
the Collector remain, neither of which changes what a JSON reader sees: a
double is written the way Python's ``json`` writes it (``1.0`` where Go writes
``1``), and an infinite double is ``"Infinity"`` (the protobuf JSON spelling,
which the Collector also reads) where the Collector writes ``"+Inf"``.

Writing is append-only and safe with several processes sharing one file: each
batch becomes one line, written with one ``os.write`` on an ``O_APPEND``
descriptor under an exclusive ``flock``. Reading is in :mod:`alephant_otel.analytics._tracereader`.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
import stat
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# No stubs ship with protobuf; ``types-protobuf`` would make the ignore unused.
from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if sys.platform != "win32":
    import fcntl

__all__ = ["TraceFileExporter", "encode_request_line"]

_log = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# Traces name sessions, agents and workflow paths: readable by the owner only,
# as the Collector's file exporter does.
_FILE_MODE = 0o600
# flock() errors that mean "this file system cannot lock", not "cannot write".
_NO_LOCKING = frozenset(
    getattr(errno, name) for name in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EINVAL") if hasattr(errno, name)
)
# How long shutdown() waits for an export that is writing right now.
_SHUTDOWN_WAIT_S = 10.0


# --- encoding -----------------------------------------------------------------------


def _b64_to_hex(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return base64.b64decode(value).hex()


def _span_to_otlp_json(span: dict[str, Any]) -> dict[str, Any]:
    # Same keys, in the order the Collector writes them: protobuf JSON orders
    # by field number, which puts ``flags`` (field 16) last.
    out: dict[str, Any] = {}
    for key in ("traceId", "spanId", "traceState", "parentSpanId"):
        if key in span:
            out[key] = _b64_to_hex(span[key]) if key != "traceState" else span[key]
    if "flags" in span:
        out["flags"] = span["flags"]
    for key, value in span.items():
        if key in out:
            continue
        if key == "links":
            out[key] = [
                {k: _b64_to_hex(v) if k in ("traceId", "spanId") else v for k, v in link.items()} for link in value
            ]
        else:
            out[key] = value
    return out


def encode_request_line(spans: Sequence[ReadableSpan]) -> bytes:
    """Encode spans as one OTLP/JSON ``ExportTraceServiceRequest`` line.

    Args:
        spans: Finished SDK spans, from any number of resources and scopes.

    Returns:
        UTF-8 JSON with no newline inside it, followed by ``b"\\n"``.

    Raises:
        Exception: Whatever the OTLP encoder raises for a span it cannot
            encode (for example a name that is not valid Unicode).
            :class:`TraceFileExporter` catches it; callers of this function
            must too.
    """
    request = encode_spans(spans)
    # camelCase is json_format's default (preserving_proto_field_name=False);
    # OTLP/JSON wants enums as integers, not names.
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in doc.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            if "spans" in scope_spans:
                scope_spans["spans"] = [_span_to_otlp_json(s) for s in scope_spans["spans"]]
    # json.dumps escapes every control character, so the line has no raw
    # newline inside; allow_nan=False because json_format already spells
    # NaN/Infinity as strings and a bare NaN would not be JSON.
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


# --- writing ------------------------------------------------------------------------

_live_exporters: weakref.WeakSet[TraceFileExporter] = weakref.WeakSet()


def _reinit_locks_after_fork() -> None:
    # A fork taken while a BatchSpanProcessor thread was mid-write would leave
    # the lock held forever in the child, and the child's copy of the descriptor
    # would hold the parent's flock until the child exits: the parent's next
    # batch, and the child's own (another descriptor), would wait on it.
    for exporter in list(_live_exporters):
        exporter._lock = threading.Lock()
        fd, exporter._fd = exporter._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_locks_after_fork)


def _open_nonblocking(path: Path) -> int:
    """Open ``path`` for appending without ever waiting: a FIFO with no reader fails at once (ENXIO).

    A blocking open of a FIFO waits for a reader; the batch thread would hang
    there and the exit with it (the SDK joins that thread at shutdown).
    """
    try:
        return os.open(path, _OPEN_FLAGS | _NONBLOCK, _FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "not a regular file (a FIFO with no reader)") from None
        raise


def _is_devnull(info: os.stat_result) -> bool:
    # /dev/null is a fine place to send traces to nobody: writes succeed and never block.
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == null.st_rdev


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _write_all(fd: int, data: bytes) -> None:
    """Append ``data``; on failure leave the file as it was (or the fragment newline-terminated)."""
    start = os.fstat(fd).st_size
    view = memoryview(data)
    written = 0
    try:
        while written < len(data):
            n = os.write(fd, view[written:])
            if n <= 0:  # pragma: no cover - regular files raise instead
                raise OSError(errno.EIO, "short write")
            written += n
    except BaseException:
        if written:
            _drop_fragment(fd, start, written)
        raise


def _drop_fragment(fd: int, start: int, written: int) -> None:
    # A half-written line would glue itself to the next writer's line and
    # cost two batches instead of one. Under the flock nobody cooperating
    # wrote meanwhile, so cutting back to ``start`` removes exactly our bytes;
    # if the size says someone else did write, end our fragment instead.
    try:
        if os.fstat(fd).st_size == start + written:
            os.ftruncate(fd, start)
        else:
            os.write(fd, b"\n")
    except OSError:
        _log.debug("alephant_otel: could not clean up a partial trace line", exc_info=True)


class TraceFileExporter(SpanExporter):
    """Appends spans to an OTLP/JSON lines file, one ``ExportTraceServiceRequest`` per batch.

    Use it behind a ``BatchSpanProcessor`` (``configure(trace_file=...)`` does):

    Examples:
        >>> import tempfile, pathlib
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import BatchSpanProcessor
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "traces.otlp.jsonl"
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(BatchSpanProcessor(TraceFileExporter(path)))
        >>> with provider.get_tracer("demo").start_as_current_span("hello"):
        ...     pass
        >>> provider.shutdown()
        >>> from alephant_otel.analytics._tracereader import iter_trace_file
        >>> [req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] for req in iter_trace_file(path)]
        ['hello']

    Several processes may share one file: each batch is one line appended
    with a single write under an exclusive lock, so lines never interleave.
    Missing parent directories are created. The file is opened for each batch
    rather than held open, so it may be rotated or deleted at any time and
    the next batch starts a new file.

    A failure to write (disk full, read-only or vanished directory) never
    raises: :meth:`export` returns ``FAILURE`` and one warning is logged per
    outage, not per batch; when the path works again an info message says so
    and writing resumes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Create the exporter; nothing is opened until the first batch.

        Args:
            path: The trace file. ``~`` is expanded; a relative path is made
                absolute now, so a later ``chdir`` does not move the file.

        Raises:
            ValueError: ``path`` is empty.
        """
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"trace file path must be a non-empty string path, got {path!r}")
        self._path = Path(raw).expanduser().absolute()
        self._lock = threading.Lock()
        #: The descriptor being written now (None between batches): a fork's child closes its copy.
        self._fd: int | None = None
        self._is_shutdown = False
        self._failing = False
        self._warned_encoding = False
        self._warned_shutdown = False
        _live_exporters.add(self)

    @property
    def path(self) -> Path:
        """The absolute path of the trace file."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append ``spans`` as one line.

        Args:
            spans: The batch from the span processor.

        Returns:
            ``SUCCESS`` when the line is in the file (or there was nothing to
            write), ``FAILURE`` when it could not be written or the exporter
            is shut down. Never raises.
        """
        with self._lock:
            if self._is_shutdown:
                if not self._warned_shutdown:
                    self._warned_shutdown = True
                    _log.warning("alephant_otel: trace file exporter is shut down, dropping %d span(s)", len(spans))
                return SpanExportResult.FAILURE
            if not spans:
                return SpanExportResult.SUCCESS
            line = self._encode(spans)
            if line is None:
                return SpanExportResult.FAILURE
            try:
                self._append(line)
            except Exception as exc:
                self._write_failed(exc, len(spans))
                return SpanExportResult.FAILURE
            if self._failing:
                self._failing = False
                _log.info("alephant_otel: writing to trace file %s again", self._path)
            return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Stop accepting batches, after the one being written (if any) is in the file.

        Nothing is buffered here: every successful :meth:`export` has already
        reached the file, and ``BatchSpanProcessor.shutdown`` exports its queue
        before calling this.
        """
        acquired = self._lock.acquire(timeout=_SHUTDOWN_WAIT_S)
        try:
            self._is_shutdown = True
        finally:
            if acquired:
                self._lock.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing to flush: each batch is written to the file before :meth:`export` returns.

        Args:
            timeout_millis: Unused.

        Returns:
            Always ``True``.
        """
        return True

    def _encode(self, spans: Sequence[ReadableSpan]) -> bytes | None:
        try:
            return encode_request_line(spans)
        except Exception:
            _log.debug("alephant_otel: a batch did not encode, retrying span by span", exc_info=True)
        # One span the encoder rejects must not cost the whole batch.
        good = []
        for span in spans:
            try:
                encode_request_line([span])
            except Exception:
                if not self._warned_encoding:
                    self._warned_encoding = True
                    _log.warning(
                        "alephant_otel: dropping span %r that cannot be encoded as OTLP "
                        "(further such spans are dropped silently)",
                        getattr(span, "name", "?"),
                        exc_info=True,
                    )
                continue
            good.append(span)
        if not good:
            return None
        try:
            return encode_request_line(good)
        except Exception:  # pragma: no cover - each span encoded on its own
            _log.debug("alephant_otel: could not encode a batch of spans", exc_info=True)
            return None

    def _open(self) -> int:
        try:
            fd = _open_nonblocking(self._path)
        except FileNotFoundError:
            # Only now: a stat per batch to check for the directory is wasted
            # work when it is there, and it may be deleted at any time.
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = _open_nonblocking(self._path)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) and not _is_devnull(info):
                raise OSError(errno.EINVAL, f"not a regular file ({_kind(info.st_mode)})")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _append(self, line: bytes) -> None:
        fd = self._fd = self._open()
        try:
            if sys.platform != "win32":
                # O_APPEND alone keeps one write() whole on local disks; the
                # lock also covers short writes and network file systems.
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as exc:
                    # A file system without locks still gets O_APPEND writes.
                    if exc.errno not in _NO_LOCKING:
                        raise
            _write_all(fd, line)
        finally:
            # Closing releases the flock.
            self._fd = None
            os.close(fd)

    def _write_failed(self, exc: Exception, count: int) -> None:
        if self._failing:
            _log.debug("alephant_otel: trace file %s still not writable: %s", self._path, exc)
            return
        self._failing = True
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
        _log.warning(
            "alephant_otel: cannot write to trace file %s (%s); dropped %d span(s). "
            "Further batches are dropped without another warning until it works again.",
            self._path,
            reason,
            count,
        )
