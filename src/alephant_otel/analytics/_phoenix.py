"""Arize Phoenix as a span source (its REST API; attributes as nested objects)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from alephant_otel import _names as n
from alephant_otel.analytics import _fastfile
from alephant_otel.analytics._convert import record_from_flat
from alephant_otel.analytics._model import SpanRecord

if TYPE_CHECKING:
    pass

from alephant_otel.analytics._httpsource import HttpSource, iso_of, ns_of
from alephant_otel.analytics._spansource import BACKEND_LIMIT, Progress, SpanQuery

__all__ = ["PhoenixSource"]

_log = logging.getLogger(__name__)


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Phoenix stores attributes as nested objects; flat dotted keys back."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, value


class PhoenixSource(HttpSource):
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

    def __init__(self, base: str, project: str | None = None, *, page_size: int = BACKEND_LIMIT) -> None:
        if not 0 < page_size <= BACKEND_LIMIT:
            raise ValueError(f"page_size must be 1..{BACKEND_LIMIT} (Phoenix's maximum), not {page_size}")
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
            params["start_time"] = iso_of(query.since_ns)
        if query.until_ns is not None:
            params["end_time"] = iso_of(query.until_ns)
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
            start_ns=ns_of(sp.get("start_time")),
            end_ns=ns_of(sp.get("end_time")),
            error=sp.get("status_code") == "ERROR",
            status_message=sp.get("status_message") or "",
            attributes=attributes,
            events=events,
        )
