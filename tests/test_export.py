"""What leaves the process: a real OTLP/HTTP export and the local trace file, decoded independently."""

from __future__ import annotations

import json

import openai
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import alephant_otel
from alephant_otel import run, session
from alephant_otel.testing import Fault, GatewayEmulator, OtlpReceiver

SECRET = "sk-live-secret-abcdef0123456789"


def _traffic(gw: GatewayEmulator) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=SECRET, max_retries=1)
    gw.add_fault(Fault.status(429, retry_after=0.01), times=1)
    with client, session("sess_exp", name="Export", path="/export"), run("run_exp", agent_id="exporter"):
        client.chat.completions.create(model="openai/gpt-4o-mini",
                                       messages=[{"role": "user", "content": "count these five words"}])
        stream = client.chat.completions.create(model="openai/gpt-4o-mini", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "stream please"}])
        for _ in stream:
            pass


def _ids_hex_to_b64(obj):
    """OTLP/JSON ids are hex; protobuf's JSON parser wants base64 bytes."""
    import base64

    if isinstance(obj, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in ("traceId", "spanId", "parentSpanId")
                    and isinstance(v, str) else _ids_hex_to_b64(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_ids_hex_to_b64(x) for x in obj]
    return obj


@pytest.fixture
def private_pipeline(tmp_path, tracer_provider):
    """A provider of its own with a real OTLP/HTTP exporter and the trace file."""
    with OtlpReceiver() as rx, GatewayEmulator() as gw:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=rx.endpoint + "/v1/traces")))
        trace_file = tmp_path / "traces.otlp.jsonl"
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider, trace_file=trace_file)
        try:
            _traffic(gw)
            provider.force_flush()
        finally:
            provider.shutdown()
            # Back to the suite's provider: HTTP spans follow configure(tracer_provider=...).
            alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
        yield rx, trace_file, gw


def test_otlp_http_export_decodes_with_the_proto(private_pipeline) -> None:
    rx, _, gw = private_pipeline
    requests = [s for s in rx.spans if s.attributes.get("alephant.span.kind") == "request"]
    assert len(requests) == 3  # 429, its retry, the stream
    retried = [s for s in requests if s.attributes.get("alephant.retry.attempt") == 1]
    assert len(retried) == 1
    for s in requests:
        assert s.attributes["alephant.session.id"] == "sess_exp"
        assert s.attributes["gen_ai.conversation.id"] == "sess_exp"
        assert s.attributes["alephant.run.id"] == "run_exp"
        assert s.attributes["alephant.request.id"] in {r.headers["x-request-id"] for r in gw.requests}
    ok = [s for s in requests if "gen_ai.usage.input_tokens" in s.attributes]
    assert len(ok) == 2 and all(s.attributes["alephant.cost.usd"] > 0 for s in ok)
    (run_span,) = [s for s in rx.spans if s.attributes.get("alephant.span.kind") == "run"]
    assert run_span.attributes["alephant.total.requests"] == 3
    assert run_span.attributes["alephant.total.retries"] == 1
    assert run_span.attributes["alephant.total.input_tokens"] == sum(
        s.attributes["gen_ai.usage.input_tokens"] for s in ok)
    assert all(SECRET.encode() not in body for body in rx.raw_bodies)


def test_trace_file_lines_are_export_requests(private_pipeline) -> None:
    rx, trace_file, _ = private_pipeline
    raw = trace_file.read_text()
    assert SECRET not in raw
    lines = raw.splitlines()
    assert lines
    names = []
    for line in lines:
        doc = json.loads(line)
        assert "resourceSpans" in doc  # camelCase, as the Collector's file exporter writes
        req = json_format.Parse(json.dumps(_ids_hex_to_b64(doc)), ExportTraceServiceRequest())
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    assert len(sp.trace_id) == 16 and len(sp.span_id) == 8
                    names.append(sp.name)
    # The file holds exactly what the OTLP receiver got.
    assert sorted(names) == sorted(s.name for s in rx.spans)
