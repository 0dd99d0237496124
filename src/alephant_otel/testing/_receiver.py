"""A real OTLP/HTTP trace receiver on loopback, for tests and examples.

It accepts ``POST /v1/traces`` as the OpenTelemetry SDK's
``OTLPSpanExporter`` (HTTP) sends it, protobuf or JSON, decodes each request
with ``opentelemetry-proto``, and keeps the raw bodies too, so a test can
check what really went over the wire (for example that no secret is in it).
"""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from alephant_otel.testing._server import LoopbackServer, QuietHTTPHandler, QuietHTTPServer

__all__ = ["OtlpReceiver", "ReceivedSpan"]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as decoded from an OTLP request."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


class _Handler(QuietHTTPHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        encoding = (self.headers.get("content-encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        request = ExportTraceServiceRequest()
        ctype = (self.headers.get("content-type") or "").split(";")[0].strip()
        try:
            if ctype == "application/json":
                json_format.Parse(body, request, ignore_unknown_fields=True)
            else:
                request.ParseFromString(body)
        except Exception:
            self.send_response(400)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.server.receiver._add(body, request)
        self.send_body(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")


class _Server(QuietHTTPServer):
    receiver: OtlpReceiver


class OtlpReceiver(LoopbackServer):
    """An OTLP/HTTP receiver on ``127.0.0.1``; use as a context manager.

    Examples:
        >>> from alephant_otel.testing import OtlpReceiver
        >>> with OtlpReceiver() as rx:
        ...     rx.endpoint.startswith("http://127.0.0.1:")
        True
    """

    _thread_name = "otlp-receiver"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        server = _Server((host, port), _Handler)
        server.receiver = self
        super().__init__(server)
        self._lock = threading.Lock()
        self._bodies: list[bytes] = []
        self._requests: list[ExportTraceServiceRequest] = []

    @property
    def endpoint(self) -> str:
        """The base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` is appended by the SDK)."""
        return self.url

    def _add(self, body: bytes, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            self._bodies.append(body)
            self._requests.append(request)

    @property
    def raw_bodies(self) -> list[bytes]:
        """Every request body as received (decompressed)."""
        with self._lock:
            return list(self._bodies)

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, decoded."""
        with self._lock:
            requests = list(self._requests)
        out: list[ReceivedSpan] = []
        for req in requests:
            for rs in req.resource_spans:
                resource = _attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            ReceivedSpan(
                                name=s.name,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                attributes=_attrs(s.attributes),
                                events=[(e.name, _attrs(e.attributes)) for e in s.events],
                                resource=resource,
                                status_code=s.status.code,
                            )
                        )
        return out
