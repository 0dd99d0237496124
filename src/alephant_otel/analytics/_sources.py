"""Where spans are read from: one small adapter per backend.

Every source yields :class:`SpanRecord` objects and nothing else; the
reconstruction does not know which backend it reads.

======================================  ==========================================================
``--source``                            reads
======================================  ==========================================================
a path (default: the local trace file)  OTLP/JSON lines, one ``ExportTraceServiceRequest`` each
                                        (this library's trace file, the Collector ``file`` exporter)
``tempo+http(s)://host:port``           Grafana Tempo HTTP API: ``GET /api/search`` (TraceQL),
                                        then ``GET /api/traces/<traceID>`` (OTLP JSON)
``jaeger+http(s)://host:port``          Jaeger query service HTTP JSON API: ``GET /api/services``,
                                        ``GET /api/traces?service=..&tags=..`` (Jaeger's JSON model)
``phoenix+http(s)://host:port``         Arize Phoenix REST API: ``GET /v1/projects/<project>/spans``
                                        (project: ``?project=NAME``, else ``PHOENIX_PROJECT_NAME``,
                                        else ``default``; ``PHOENIX_API_KEY`` is sent as a bearer)
``clickhouse+http(s)://host:port/DB``   ClickHouse (the Collector's ``clickhouseexporter`` tables);
                                        sessions computed in the server: see ``_clickhouse``
======================================  ==========================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from alephant_otel.analytics._filesource import FileSource, default_trace_path, missing_default_hint
from alephant_otel.analytics._httpsource import parse_base
from alephant_otel.analytics._jaeger import JaegerSource
from alephant_otel.analytics._phoenix import PhoenixSource
from alephant_otel.analytics._spansource import SourceSpecError, SpanSource
from alephant_otel.analytics._tempo import TempoSource

__all__ = ["open_source"]


def open_source(spec: str | Path | None) -> SpanSource:
    """The source a ``--source`` value names.

    Args:
        spec: A trace file path, ``tempo+http(s)://host:port``,
            ``jaeger+http(s)://host:port`` or ``phoenix+http(s)://host:port``
            (``?project=NAME``); ``None`` for the default trace file.

    Raises:
        SourceSpecError: ``spec`` is a URL but not one of the forms above.
    """
    if spec is None:
        return FileSource(default_trace_path(), missing_hint=missing_default_hint())
    if isinstance(spec, Path):
        return FileSource(spec)
    lowered = spec.lower()
    if lowered.startswith(("tempo+http://", "tempo+https://")):
        base, _ = parse_base(spec)
        return TempoSource(base)
    if lowered.startswith(("jaeger+http://", "jaeger+https://")):
        base, _ = parse_base(spec)
        return JaegerSource(base)
    if lowered.startswith(("phoenix+http://", "phoenix+https://")):
        base, qs = parse_base(spec)
        project = qs["project"][0] if qs.get("project") else None
        return PhoenixSource(base, project)
    if lowered.startswith(("clickhouse+http://", "clickhouse+https://")):
        # Also a summary source (the sessions computed in the server): see ``_summary``.
        from alephant_otel.analytics._clickhouse import ClickHouseSource

        return ClickHouseSource(spec)
    scheme, sep, _ = lowered.partition("://")
    if sep and scheme in ("http", "https"):
        forms = ", ".join(f"{b}+{spec}" for b in ("tempo", "jaeger", "phoenix", "clickhouse"))
        raise SourceSpecError(f"source {spec!r} does not say which backend it is: use {forms}")
    if sep and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise SourceSpecError(
            f"unknown source {spec!r}: use a file path, tempo+http://, jaeger+http://, phoenix+http:// "
            "or clickhouse+http://"
        )
    return FileSource(spec)
