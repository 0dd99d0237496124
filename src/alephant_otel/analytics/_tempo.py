"""Grafana Tempo as a span source: TraceQL search, then each trace as OTLP JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from alephant_otel import _names as n
from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._convert import records_from_otlp
from alephant_otel.analytics._model import SpanRecord

if TYPE_CHECKING:
    pass

from alephant_otel.analytics._httpsource import HttpSource, seconds
from alephant_otel.analytics._spansource import Progress, SpanQuery

__all__ = ["TempoSource"]

_log = logging.getLogger(__name__)


class TempoSource(HttpSource):
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
            params["start"] = seconds(query.since_ns)
        if query.until_ns is not None:
            params["end"] = (seconds(query.until_ns) or 0) + 1
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
