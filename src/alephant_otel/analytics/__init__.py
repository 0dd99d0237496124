"""Session analytics: rebuild sessions, costs and vitals from exported spans.

Reads spans back from the local trace file, a Collector ``file`` exporter
file, Grafana Tempo, Jaeger or Arize Phoenix, and rebuilds each session as a
tree of runs and requests with their cost, tokens, latency, retries, errors
and policy events. Nothing here needs (or loads) the instrumentation.

Examples:
    >>> from alephant_otel.analytics import load_sessions
    >>> for s in load_sessions("traces.jsonl"):  # doctest: +SKIP
    ...     print(s.session_id, s.status, s.request_count, f"${s.cost_usd:.4f}")
"""

from __future__ import annotations

from alephant_otel.analytics._filesource import FileSource, default_trace_path
from alephant_otel.analytics._jaeger import JaegerSource
from alephant_otel.analytics._model import PolicyEvent, Request, Rollup, Run, Session, SessionStatus, SpanRecord
from alephant_otel.analytics._phoenix import PhoenixSource
from alephant_otel.analytics._query import (
    SORT_KEYS,
    STATUSES,
    SessionIdError,
    SessionSet,
    filter_sessions,
    parse_time,
    resolve_session_id,
    sort_sessions,
)
from alephant_otel.analytics._read import load_sessions, read_sessions
from alephant_otel.analytics._reconstruct import DEFAULT_ACTIVE_WINDOW_S, SessionBuilder, build_sessions
from alephant_otel.analytics._sources import open_source
from alephant_otel.analytics._spansource import (
    Progress,
    SourceError,
    SourceSpecError,
    SpanQuery,
    SpanSource,
    TraceFileMissing,
)
from alephant_otel.analytics._tempo import TempoSource
from alephant_otel.analytics._vitals import Flag, GroupVitals, SessionVitals, Vitals, VitalsConfig, compute_vitals

__all__ = [
    "DEFAULT_ACTIVE_WINDOW_S",
    "SORT_KEYS",
    "STATUSES",
    "FileSource",
    "Flag",
    "GroupVitals",
    "JaegerSource",
    "PhoenixSource",
    "PolicyEvent",
    "Progress",
    "Request",
    "Rollup",
    "Run",
    "Session",
    "SessionBuilder",
    "SessionIdError",
    "SessionSet",
    "SessionStatus",
    "SessionVitals",
    "SourceError",
    "SourceSpecError",
    "SpanQuery",
    "SpanRecord",
    "SpanSource",
    "TempoSource",
    "TraceFileMissing",
    "Vitals",
    "VitalsConfig",
    "build_sessions",
    "compute_vitals",
    "default_trace_path",
    "filter_sessions",
    "load_sessions",
    "open_source",
    "parse_time",
    "read_sessions",
    "resolve_session_id",
    "sort_sessions",
]
