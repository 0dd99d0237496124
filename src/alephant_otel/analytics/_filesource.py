"""The local trace file as a span source (OTLP/JSON lines; gzip, bz2 and xz read too)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alephant_otel import _names as n
from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._convert import records_from_otlp
from alephant_otel.analytics._model import SpanRecord
from alephant_otel.analytics._tracereader import (
    default_trace_file,
    demo_trace_file,
    is_compressed,
    open_trace_file,
    read_lines,
)

if TYPE_CHECKING:
    from alephant_otel.analytics._reconstruct import SessionBuilder

from alephant_otel.analytics._spansource import Progress, SourceError, SpanQuery, TraceFileMissing

__all__ = ["FileSource", "default_trace_path", "missing_default_hint"]

_log = logging.getLogger(__name__)


def default_trace_path() -> Path:
    """The trace file the CLI reads when no ``--source`` is given.

    ``ALEPHANT_TRACE_FILE`` when set, else the library's default location.
    """
    env = os.environ.get(n.ENV_TRACE_FILE)
    if env:
        return Path(env).expanduser()
    return default_trace_file()


def missing_default_hint() -> str:
    """What to say when the default trace file does not exist: how to name one, and the demo's file if any."""
    hint = f"set {n.ENV_TRACE_FILE} or pass --source"
    if not os.environ.get(n.ENV_TRACE_FILE):
        demo = demo_trace_file()
        if demo.is_file():
            hint += f"; the demo's spans are in {demo}: --source {demo}"
    return hint


# --- the local trace file ---------------------------------------------------------


class FileSource:
    """OTLP/JSON lines: the local trace file or a Collector ``file`` exporter file.

    Lines that are not JSON or not an ``ExportTraceServiceRequest`` are
    skipped and counted in :attr:`corrupt`; a last line without its newline
    that does not parse is a writer mid-write and only sets
    :attr:`incomplete_tail` (the same rules as ``_tracefile.iter_trace_file``).

    :meth:`spans` reads the lines itself rather than through
    ``iter_trace_file`` for progress, and converts a line to compact records
    at once instead of keeping its dict. :meth:`read_into` (what
    ``read_sessions`` uses) is the fast path: rows instead of records, and a
    big file parsed in worker processes (see ``_fastfile``). Both parse with
    ``orjson`` when installed (``alephant-otel[fast]``), else ``json``. A file
    compressed with gzip, bzip2 or xz (a rotated trace file) is read as well,
    in one pass and one process.

    Args:
        path: The file.
        workers: Worker processes for :meth:`read_into` on a big file (1: none);
            default ``ALEPHANT_ANALYTICS_WORKERS``, else the usable CPUs.
        missing_hint: Said after "no trace file at PATH" when the file does
            not exist (for the default file: how to name another one).
    """

    def __init__(self, path: str | Path, *, workers: int | None = None, missing_hint: str = "") -> None:
        self.path = Path(path).expanduser()
        self.missing_hint = missing_hint
        self.description = str(self.path)
        self.corrupt = 0
        self.lines = 0
        self.incomplete_tail = False
        self.cut = False
        self.workers = workers

    def _open(self) -> Any:
        try:
            return open_trace_file(self.path)
        except FileNotFoundError:
            raise TraceFileMissing(self.path, self.missing_hint) from None
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def read_into(self, builder: SessionBuilder, progress: Progress | None = None) -> None:
        """Feed every span of the file into ``builder`` (the sessions :meth:`spans` would give, faster)."""
        with self._open() as fh:
            size = os.fstat(fh.fileno()).st_size
            compressed = is_compressed(fh)
        if compressed:
            # A compressed file (a rotated one) cannot be split by byte range: one pass, record by record.
            for rec in self._records(progress):
                builder.add(rec)
            return
        stats = _fastfile.read_into(self.path, size, builder, progress, workers=self.workers)
        self.lines += stats.lines
        self.corrupt += stats.corrupt
        self.incomplete_tail = self.incomplete_tail or stats.incomplete_tail
        builder.corrupt_values += stats.corrupt_values
        self._check_some_valid()

    def _check_some_valid(self) -> None:
        """An empty file is an empty answer; a file of nothing but bad lines is not a trace file."""
        valid = self.lines - self.corrupt - self.incomplete_tail
        if self.cut and valid <= 0:
            raise SourceError(f"cannot read {self.path}: the compressed data is cut or damaged before any span line")
        if self.corrupt and valid <= 0:
            raise SourceError(
                f"no valid span line in {self.path}: {self.corrupt} line(s) are not OTLP/JSON trace data "
                "(is it a trace file?)"
            )

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Every span in the file, streamed line by line."""
        return self._records(progress)

    def _cut(self) -> None:
        self.corrupt += 1  # the line a cut or damaged compressed stream broke
        self.cut = True

    def _records(self, progress: Progress | None) -> Iterator[SpanRecord]:
        fh = self._open()
        with fh:
            # Progress counts bytes of text: the size of a compressed file is not its total.
            total = None if is_compressed(fh) else os.fstat(fh.fileno()).st_size
            done = 0
            step = max((total or 0) // 200, 1 << 20)
            next_report = step
            loads = _fastfile.decoder[1]
            for line in read_lines(fh, on_cut=self._cut):
                done += len(line)
                if progress is not None and done >= next_report:
                    progress(done, total)
                    next_report = done + step
                if not line.strip():
                    continue
                self.lines += 1
                try:
                    doc = loads(line)
                    resource_spans = doc["resourceSpans"] if "resourceSpans" in doc else doc["resource_spans"]
                    # Materialize the line so that a bad span counts the line corrupt, not half of it.
                    records = list(records_from_otlp(resource_spans))
                except _fastfile.CORRUPT:
                    if line.endswith(b"\n"):
                        self.corrupt += 1
                    else:
                        self.incomplete_tail = True
                    continue
                yield from records
            if progress is not None:
                progress(done, total)
        self._check_some_valid()
