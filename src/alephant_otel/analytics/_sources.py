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

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qs, quote, urlsplit

from alephant_otel import _names as n
from alephant_otel._tracereader import default_trace_file, demo_trace_file, is_compressed, open_trace_file, read_lines
from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._convert import record_from_flat, records_from_otlp
from alephant_otel.analytics._http import HttpGetter
from alephant_otel.analytics._model import SpanRecord

if TYPE_CHECKING:
    from alephant_otel.analytics._reconstruct import SessionBuilder

__all__ = [
    "FileSource",
    "JaegerSource",
    "PhoenixSource",
    "Progress",
    "SourceError",
    "SourceSpecError",
    "SpanQuery",
    "SpanSource",
    "TempoSource",
    "default_trace_path",
    "iso_ns",
    "open_source",
]

_log = logging.getLogger(__name__)

#: Called with (done, total) as a read advances; total is None when unknown.
Progress = Callable[[int, "int | None"], None]

_TIMEOUT_S: Final = 30.0
_BACKEND_LIMIT: Final = 1000


class SourceError(Exception):
    """A source cannot be read: a missing file, an unreachable or failing backend.

    The message is one line a user can act on.
    """


class TraceFileMissing(SourceError):
    """The trace file does not exist (yet): a writer may still create it.

    Attributes:
        path: The file.
    """

    def __init__(self, path: Path, hint: str = "") -> None:
        super().__init__(f"no trace file at {path}" + (f" ({hint})" if hint else ""))
        self.path = path


class SourceSpecError(SourceError):
    """The source's name itself is wrong (``http://...`` without ``tempo+``, an unknown scheme).

    A usage error: the CLI exits 2 for it, 1 for other :class:`SourceError`.
    """


@dataclass(frozen=True, slots=True)
class SpanQuery:
    """What to fetch. Backends use it to narrow the request; the file reads all.

    Attributes:
        since_ns: Only traces/spans after this time (unix ns), when set.
        until_ns: Only traces/spans before this time (unix ns), when set.
        session_id: Only this session, when set.
        limit: Most traces (Tempo, Jaeger) to fetch per query.
    """

    since_ns: int | None = None
    until_ns: int | None = None
    session_id: str | None = None
    limit: int = _BACKEND_LIMIT


class SpanSource(Protocol):
    """A place spans are read from."""

    #: Human description used in messages ("no session x in <description>").
    description: str
    #: Lines (file) or documents (backends) that could not be parsed and were skipped.
    corrupt: int

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Every span the query covers."""
        ...


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


# --- HTTP backends ------------------------------------------------------------------


def _parse_base(spec: str) -> tuple[str, dict[str, list[str]]]:
    scheme, _, rest = spec.partition("+")
    parts = urlsplit(rest)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceSpecError(f"bad source {spec!r}: expected {scheme}+http(s)://host:port")
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return base, parse_qs(parts.query)


class _Http:
    """Shared HTTP plumbing (standard library only, see ``_http``): errors become :class:`SourceError`."""

    name = "backend"

    def __init__(self, base: str, headers: Mapping[str, str] | None = None) -> None:
        self.base = base
        self.corrupt = 0
        self._headers = dict(headers or {})

    def _client(self) -> HttpGetter:
        return HttpGetter(self.name, self.base, self._headers, SourceError, _TIMEOUT_S)


def _seconds(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000_000_000


class TempoSource(_Http):
    """Grafana Tempo over its HTTP API.

    Follows the Tempo HTTP API document (grafana.com/docs/tempo/latest/api_docs):
    ``GET /api/search?q=<TraceQL>&start=&end=&limit=`` (unix seconds) returns
    ``{"traces": [{"traceID": ...}, ...]}``; each trace is then fetched with
    ``GET /api/traces/<traceID>`` (v1), whose body is OTLP JSON under
    ``batches`` (or ``resourceSpans``; the v2 endpoint's ``trace.resourceSpans``
    is read too). Tempo writes ids in base64 there; both encodings are read.
    """

    name = "tempo"

    def __init__(self, base: str) -> None:
        super().__init__(base, {"Accept": "application/json"})
        self.description = f"tempo at {base}"

    @staticmethod
    def traceql(query: SpanQuery) -> str:
        """The TraceQL selecting traces of alephant sessions and gateway requests (one session when asked)."""
        if query.session_id is not None:
            return f"{{ span.{n.ATTR_SESSION_ID} = {json.dumps(query.session_id)} }}"
        # Request spans made outside any session carry no session id: `sessions list` shows them as one line.
        return f'{{ span.{n.ATTR_SESSION_ID} != nil || span.{n.ATTR_SPAN_KIND} = "{n.SPAN_KIND_REQUEST}" }}'

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Spans of every trace the TraceQL search finds."""
        params: dict[str, Any] = {"q": self.traceql(query), "limit": query.limit}
        if query.since_ns is not None:
            params["start"] = _seconds(query.since_ns)
        if query.until_ns is not None:
            params["end"] = (_seconds(query.until_ns) or 0) + 1
        client = self._client()
        found = client.get("/api/search", params)
        ids = list(dict.fromkeys(t["traceID"] for t in (found or {}).get("traces") or () if "traceID" in t))
        for i, trace_id in enumerate(ids):
            doc = client.get(f"/api/traces/{quote(trace_id, safe='')}")
            try:
                if "trace" in doc and isinstance(doc["trace"], dict):
                    doc = doc["trace"]
                batches = doc.get("batches") if "batches" in doc else doc.get("resourceSpans")
                records = list(records_from_otlp(batches or ()))
            except _fastfile.CORRUPT:
                self.corrupt += 1
                continue
            yield from records
            if progress is not None:
                progress(i + 1, len(ids))


_JAEGER_TAG_FALLBACK: Final = {"error", "otel.status_code", "otel.status_description"}


class JaegerSource(_Http):
    """Jaeger over the query service's HTTP JSON API (the one the Jaeger UI uses).

    Follows Jaeger's documented HTTP JSON model (jaegertracing.io "APIs",
    "HTTP JSON"; ``model/json`` in the jaeger repository): ``GET /api/services``
    returns ``{"data": [service, ...]}``; ``GET /api/traces?service=&tags=&start=&end=&limit=``
    (microseconds; ``tags`` a JSON object matched exactly) returns
    ``{"data": [{"traceID", "spans": [...], "processes": {...}}]}``, spans with
    ``spanID``, ``operationName``, ``references`` (``CHILD_OF``), ``startTime``
    and ``duration`` (µs), typed ``tags`` and ``logs`` (OTel span events, the
    event name in the ``event`` field). Tags cannot test for presence, so
    each service is searched for session, run and request spans by kind.
    """

    name = "jaeger"

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.description = f"jaeger at {base}"

    def _searches(self, query: SpanQuery) -> list[dict[str, str]]:
        if query.session_id is not None:
            return [{n.ATTR_SESSION_ID: query.session_id}]
        return [{n.ATTR_SPAN_KIND: k} for k in (n.SPAN_KIND_SESSION, n.SPAN_KIND_RUN, n.SPAN_KIND_REQUEST)]

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Spans of every trace found in any service."""
        client = self._client()
        services = client.get("/api/services").get("data") or []
        searches = [(svc, tags) for svc in services for tags in self._searches(query)]
        seen: set[str] = set()
        for i, (svc, tags) in enumerate(searches):
            params: dict[str, Any] = {"service": svc, "tags": json.dumps(tags), "limit": query.limit}
            if query.since_ns is not None:
                params["start"] = query.since_ns // 1000
            if query.until_ns is not None:
                params["end"] = query.until_ns // 1000
            doc = client.get("/api/traces", params)
            for trace in doc.get("data") or ():
                try:
                    tid = trace["traceID"]
                    if tid in seen:
                        continue
                    seen.add(tid)
                    records = list(self._records(trace))
                except _fastfile.CORRUPT:
                    self.corrupt += 1
                    continue
                yield from records
            if progress is not None:
                progress(i + 1, len(searches))

    @staticmethod
    def _records(trace: Mapping[str, Any]) -> Iterator[SpanRecord]:
        processes = trace.get("processes") or {}
        for sp in trace["spans"]:
            tags = {t["key"]: t.get("value") for t in sp.get("tags") or ()}
            parent = None
            for ref in sp.get("references") or ():
                if ref.get("refType") == "CHILD_OF" and ref.get("traceID") == sp["traceID"]:
                    parent = ref.get("spanID")
                    break
            events = []
            for log in sp.get("logs") or ():
                fields = {f["key"]: f.get("value") for f in log.get("fields") or ()}
                events.append((str(fields.pop("event", "")), fields))
            error = tags.get("otel.status_code") == "ERROR" or tags.get("error") in (True, "true")
            start_us = int(sp.get("startTime") or 0)
            proc = processes.get(sp.get("processID")) or {}
            yield record_from_flat(
                trace_id=sp["traceID"],
                span_id=sp["spanID"],
                parent_span_id=parent,
                name=sp.get("operationName") or "",
                start_ns=start_us * 1000,
                end_ns=(start_us + int(sp.get("duration") or 0)) * 1000,
                error=error,
                status_message=str(tags.get("otel.status_description") or ""),
                attributes={k: v for k, v in tags.items() if k not in _JAEGER_TAG_FALLBACK},
                events=events,
                service=proc.get("serviceName"),
            )


def iso_ns(text: str) -> int:
    """An ISO 8601 time as unix ns; a naive time is UTC. Raises ``ValueError`` when it is not one."""
    raw = text.strip()
    dt = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp loses nanoseconds (and microseconds at this magnitude).
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _iso_ns(value: Any) -> int:
    return iso_ns(value) if isinstance(value, str) and value else 0


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Phoenix stores attributes as nested objects; flat dotted keys back."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, value


class PhoenixSource(_Http):
    """Arize Phoenix over its REST API.

    Follows Phoenix's REST API (OpenAPI operation ``getSpans``):
    ``GET /v1/projects/{project_identifier}/spans?limit=&cursor=&start_time=&end_time=``
    returns ``{"data": [span, ...], "next_cursor": str | null}``, each span
    ``{"id", "name", "context": {"trace_id", "span_id"}, "span_kind",
    "parent_id", "start_time", "end_time" (ISO 8601), "status_code"
    ("OK"/"ERROR"/"UNSET"), "status_message", "attributes" (flat dotted keys),
    "events": [{"name", "timestamp", "attributes"}]}``. Pages are followed
    through ``next_cursor``. A session is narrowed server-side with
    ``attribute=alephant.session.id:"<id>"`` (newer servers; older ones ignore
    it and the spans are filtered here). ``page_size`` spans are asked per
    page (Phoenix accepts at most 1000).
    """

    name = "phoenix"

    def __init__(self, base: str, project: str | None = None, *, page_size: int = _BACKEND_LIMIT) -> None:
        if not 0 < page_size <= _BACKEND_LIMIT:
            raise ValueError(f"page_size must be 1..{_BACKEND_LIMIT} (Phoenix's maximum), not {page_size}")
        self.page_size = page_size
        headers = {"Accept": "application/json"}
        api_key = os.environ.get("PHOENIX_API_KEY")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        super().__init__(base, headers)
        self.project = project or os.environ.get("PHOENIX_PROJECT_NAME") or "default"
        self.description = f"phoenix at {base} (project {self.project})"

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Every span of the project in the time range, page by page."""
        params: dict[str, Any] = {"limit": self.page_size}
        if query.since_ns is not None:
            params["start_time"] = _iso(query.since_ns)
        if query.until_ns is not None:
            params["end_time"] = _iso(query.until_ns)
        if query.session_id is not None:
            params["attribute"] = f"{n.ATTR_SESSION_ID}:{json.dumps(query.session_id)}"
        path = f"/v1/projects/{quote(self.project, safe='')}/spans"
        pages = 0
        client = self._client()
        while True:
            doc = client.get(path, params)
            for sp in doc.get("data") or ():
                try:
                    rec = self._record(sp)
                except _fastfile.CORRUPT:
                    self.corrupt += 1
                    continue
                if query.session_id is None or rec.session_id == query.session_id:
                    yield rec
            pages += 1
            if progress is not None:
                progress(pages, None)
            cursor = doc.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    @staticmethod
    def _record(sp: Mapping[str, Any]) -> SpanRecord:
        ctx = sp["context"]
        attributes = dict(_flatten(sp.get("attributes") or {}))
        events: list[tuple[str, Mapping[str, Any]]] = [
            (str(ev.get("name") or ""), dict(_flatten(ev.get("attributes") or {}))) for ev in sp.get("events") or ()
        ]
        return record_from_flat(
            trace_id=ctx["trace_id"],
            span_id=ctx["span_id"],
            parent_span_id=sp.get("parent_id"),
            name=sp.get("name") or "",
            start_ns=_iso_ns(sp.get("start_time")),
            end_ns=_iso_ns(sp.get("end_time")),
            error=sp.get("status_code") == "ERROR",
            status_message=sp.get("status_message") or "",
            attributes=attributes,
            events=events,
        )


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


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
        base, _ = _parse_base(spec)
        return TempoSource(base)
    if lowered.startswith(("jaeger+http://", "jaeger+https://")):
        base, _ = _parse_base(spec)
        return JaegerSource(base)
    if lowered.startswith(("phoenix+http://", "phoenix+https://")):
        base, qs = _parse_base(spec)
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
