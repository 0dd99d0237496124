"""The local trace file as an OpenTelemetry exporter by name: ``OTEL_TRACES_EXPORTER=alephant_file``.

Entry point group ``opentelemetry_traces_exporter``, name ``alephant_file``:
the SDK's configurator (``opentelemetry-instrument`` with
``opentelemetry-distro``) and ``configure()`` create it with no arguments, as
they create ``console`` or ``otlp``. It writes where ``alephant-otel sessions``
reads by default: ``ALEPHANT_TRACE_FILE`` when set, else the per-user default
location, so ``opentelemetry-instrument`` users get the local trace file with
nothing else running.
"""

from __future__ import annotations

import os
from pathlib import Path

from alephant_otel import _names as n
from alephant_otel.export._tracefile import TraceFileExporter
from alephant_otel.export._tracepath import default_trace_file

__all__ = ["AlephantFileExporter", "named_exporter_paths"]

# Files an exporter by name writes: the trace file ALEPHANT_TRACE_FILE asks the library for is
# then that same file, and must not be added to the provider a second time.
_paths: set[Path] = set()


def named_exporter_paths() -> frozenset[Path]:
    """The (resolved) files that ``alephant_file`` exporters created in this process write."""
    return frozenset(_paths)


class AlephantFileExporter(TraceFileExporter):
    """:class:`TraceFileExporter` on the default trace file, constructible with no arguments.

    Chosen by name, with nothing else running::

        OTEL_TRACES_EXPORTER=alephant_file opentelemetry-instrument python app.py
        alephant-otel sessions list
    """

    def __init__(self) -> None:
        """Write to ``ALEPHANT_TRACE_FILE``, else to the default trace file location."""
        raw = os.environ.get(n.ENV_TRACE_FILE, "").strip()
        super().__init__(Path(raw).expanduser() if raw else default_trace_file())
        _paths.add(self.path.resolve())
