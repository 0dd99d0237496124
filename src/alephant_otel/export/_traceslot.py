"""The trace file of one tracer provider, which a repeat ``configure()`` can move or stop.

A span processor cannot be taken off an SDK tracer provider, so the provider
gets one batch processor for the trace file, for good, and its exporter is
this slot: ``configure(trace_file=other)`` points it at another file, and
``configure()`` with no trace file (and no ``ALEPHANT_TRACE_FILE``) empties it.
Spans that ended before the switch are flushed to the old file first.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from alephant_otel.export._tracefile import TraceFileExporter

__all__ = ["TraceFileSlot"]

_log = logging.getLogger(__name__)
#: How long a switch waits for the spans already ended to reach the old file.
_FLUSH_MS = 5000


class TraceFileSlot(SpanExporter):
    """A span exporter that writes to the current trace file, or nowhere."""

    def __init__(self) -> None:
        """An empty slot, with the batch processor to add to the provider."""
        self._lock = threading.Lock()
        self._exporter: TraceFileExporter | None = None
        self.processor = BatchSpanProcessor(self)

    @property
    def path(self) -> Path | None:
        """The trace file written now (None: none)."""
        exporter = self._exporter
        return exporter.path if exporter is not None else None

    def switch(self, path: str | os.PathLike[str] | None) -> None:
        """Write to ``path`` from now on (None: stop writing a trace file)."""
        new = Path(os.fspath(path)).expanduser().absolute() if path is not None else None
        if new == self.path:
            return
        if self._exporter is not None:
            # What ended before the switch belongs in the old file.
            self.processor.force_flush(_FLUSH_MS)
        with self._lock:
            old, self._exporter = self._exporter, TraceFileExporter(new) if new is not None else None
        if old is not None:
            old.shutdown()
            _log.debug("alephant_otel: trace file %s -> %s", old.path, new)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append ``spans`` to the current trace file; with none, drop them."""
        exporter = self._exporter
        return exporter.export(spans) if exporter is not None else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Shut the current trace file exporter down."""
        with self._lock:
            exporter = self._exporter
        if exporter is not None:
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True
