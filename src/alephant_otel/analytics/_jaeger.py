"""Jaeger's query service as a span source (its HTTP JSON API and model)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from alephant_otel import _names as n
from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._convert import record_from_flat
from alephant_otel.analytics._model import SpanRecord

if TYPE_CHECKING:
    pass

from alephant_otel.analytics._httpsource import HttpSource
from alephant_otel.analytics._spansource import Progress, SpanQuery

__all__ = ["JaegerSource"]

_log = logging.getLogger(__name__)


_JAEGER_TAG_FALLBACK: Final = {"error", "otel.status_code", "otel.status_description"}


class JaegerSource(HttpSource):
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
