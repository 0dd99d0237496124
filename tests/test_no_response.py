"""Gateway requests that get no response: a timeout, a refused connection, a cancelled task.

When the transport raises, the httpx instrumentation ends the request span
without calling the response hook. Such a request was still made (the gateway
may have received it, and the SDK retries it): it must count in its run's and
session's roll-ups, so that ``sessions`` finds them matching the request
spans; say why it failed (``error.type``, as the GenAI conventions ask of every
failed operation); and be in the duration metric. Real sockets on loopback,
real SDKs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import StatusCode

import alephant_otel
from alephant_otel import run, session
from alephant_otel.analytics import load_sessions
from alephant_otel.export._tracefile import TraceFileExporter
from alephant_otel.testing import Fault, GatewayEmulator

MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Where is my order?"}]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _durations(reader: InMemoryMetricReader) -> list[dict]:
    data = reader.get_metrics_data()
    return [
        dict(p.attributes)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.operation.duration"
        for p in m.data.data_points
        for _ in range(p.count)
    ]


def _of_kind(spans, kind: str) -> list:
    found = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == kind]
    return sorted(found, key=lambda s: s.start_time)


def _totals(span) -> tuple[int, int]:
    return span.attributes["alephant.total.requests"], span.attributes["alephant.total.retries"]


def test_a_timed_out_attempt_counts_in_the_rollups_and_says_why(
    gateway: GatewayEmulator, spans, metrics: InMemoryMetricReader, tmp_path: Path
) -> None:
    gateway.add_fault(Fault.timeout(1.0))
    with openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-x", max_retries=1, timeout=0.3) as client:
        with session("sess_timeout"), run("run_timeout", agent_id="triage"):
            reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert reply.usage is not None
    timed_out, retried = _of_kind(spans, "request")
    assert timed_out.attributes["error.type"] == "ReadTimeout"
    # OpenTelemetry's own status and exception event are kept, not replaced.
    assert timed_out.status.status_code is StatusCode.ERROR
    assert timed_out.status.description.startswith("ReadTimeout")
    assert [e.attributes["exception.type"] for e in timed_out.events] == ["httpx2.ReadTimeout"]
    assert "gen_ai.usage.input_tokens" not in timed_out.attributes
    assert retried.attributes["alephant.retry.attempt"] == 1
    assert "error.type" not in retried.attributes
    (run_span,) = _of_kind(spans, "run")
    (session_span,) = _of_kind(spans, "session")
    assert _totals(run_span) == _totals(session_span) == (2, 1)
    assert run_span.attributes["alephant.total.input_tokens"] == reply.usage.prompt_tokens
    durations = _durations(metrics)
    assert sorted(str(d.get("error.type")) for d in durations) == ["None", "ReadTimeout"]
    assert {d["gen_ai.request.model"] for d in durations} == {MODEL}
    # Read back, the session span's roll-up matches its request spans.
    exporter = TraceFileExporter(tmp_path / "t.jsonl")
    exporter.export(spans.get_finished_spans())
    exporter.shutdown()
    (s,) = load_sessions(tmp_path / "t.jsonl")
    assert (s.request_count, s.retries, s.errors) == (2, 1, 1)
    assert s.rollup_matches is True


def test_a_refused_connection_counts_and_says_why(closed_port: int, spans, tracer_provider) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    alephant_otel.configure(gateway_url=url, tracer_provider=tracer_provider)
    with httpx.Client() as client, session("sess_refused"):
        with pytest.raises(httpx.ConnectError):
            client.post(url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    (req,) = _of_kind(spans, "request")
    assert req.attributes["error.type"] == "ConnectError"
    assert req.attributes["gen_ai.request.model"] == MODEL
    assert req.status.status_code is StatusCode.ERROR
    (session_span,) = _of_kind(spans, "session")
    assert _totals(session_span) == (1, 0)


def test_a_refused_connection_to_another_host_is_left_alone(gateway: GatewayEmulator, closed_port: int, spans) -> None:
    with httpx.Client() as client, session("sess_elsewhere"):
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{closed_port}/")
    (client_span,) = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]
    assert "alephant.span.kind" not in client_span.attributes
    assert "error.type" not in client_span.attributes  # OpenTelemetry's span, as it made it
    (session_span,) = _of_kind(spans, "session")
    assert _totals(session_span) == (0, 0)


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
async def test_a_request_cancelled_before_its_response_is_an_error(
    transport: str, gateway: GatewayEmulator, spans, metrics: InMemoryMetricReader
) -> None:
    gateway.add_fault(Fault.timeout(1.0))
    http_client = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
    async with openai.AsyncOpenAI(
        base_url=gateway.openai_base_url, api_key="sk-x", max_retries=0, http_client=http_client
    ) as client:
        with session("sess_cancel"), run("run_cancel"):
            call = client.chat.completions.create(model=MODEL, messages=MESSAGES)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(call, 0.2)
    (req,) = _of_kind(spans, "request")
    # OpenTelemetry records no BaseException; without this the span read as a success.
    assert req.attributes["error.type"] == "CancelledError"
    assert req.status.status_code is StatusCode.ERROR
    assert "http.status_code" not in req.attributes
    (run_span,) = _of_kind(spans, "run")
    assert _totals(run_span) == (1, 0)
    assert [d.get("error.type") for d in _durations(metrics)] == ["CancelledError"]


def test_a_failure_while_recording_it_does_not_reach_the_caller(
    closed_port: int, spans, tracer_provider, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from alephant_otel.record import _metrics

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(_metrics.Instruments, "record", broken)
    url = f"http://127.0.0.1:{closed_port}"
    # A real meter provider: with none, recording is skipped and nothing could fail there.
    alephant_otel.configure(gateway_url=url, tracer_provider=tracer_provider, meter_provider=MeterProvider())
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_broken"), caplog.at_level(logging.WARNING, logger="alephant_otel"):
        for _ in range(2):
            # What the caller gets is what it would get without the package.
            with pytest.raises(openai.APIConnectionError):
                client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert len(_of_kind(spans, "request")) == 2  # both spans still ended and exported
    (warning,) = [r for r in caplog.records if r.name.startswith("alephant_otel")]
    assert "request end" in warning.getMessage()


def test_a_request_made_while_the_caller_handles_an_error_is_not_a_failure(spans, tracer_provider) -> None:
    # A fallback call inside an ``except`` block: the caller's exception is the one being
    # handled while the span ends, but the request was answered. An in-memory body (a
    # MockTransport's) is recorded in the response hook, with the span ending right after.
    gateway_url = "http://gateway.test"
    reply = {"object": "list", "model": "text-embedding-3-small", "data": [], "usage": {"prompt_tokens": 7}}
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=reply)))
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
    alephant_otel.configure(gateway_url=gateway_url, tracer_provider=tracer_provider)
    with client, session("sess_fallback"):
        try:
            raise LookupError("the caller's own error")
        except LookupError:
            assert client.post(gateway_url + "/v1/embeddings", json={"model": "x"}).status_code == 200
    (req,) = _of_kind(spans, "request")
    assert "error.type" not in req.attributes
    assert req.status.status_code is StatusCode.UNSET
    assert req.attributes["gen_ai.usage.input_tokens"] == 7
    (session_span,) = _of_kind(spans, "session")
    assert _totals(session_span) == (1, 0)


def test_request_spans_are_freed_without_the_garbage_collector(gateway: GatewayEmulator, closed_port: int) -> None:
    # The hooks put things on a request span (a stand-in ``end``), in the request's extensions
    # and in the body watcher, and remember the last request in the context (the propagator's
    # marker). None of that may keep the span alive, or tie it into a cycle: httpx keeps each
    # response in one (response <-> its stream), so anything the request or stream holds lives
    # until the collector runs, and a worker making calls all day would pile spans up.
    import gc
    import weakref

    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    started: list[weakref.ref] = []

    class Watch(SpanProcessor):
        def on_start(self, span, parent_context=None) -> None:
            if span.kind.name == "CLIENT":
                started.append(weakref.ref(span))

    provider = TracerProvider()
    provider.add_span_processor(Watch())
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=provider)
    reply = {"object": "list", "data": [], "usage": {"prompt_tokens": 1}}
    mock = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=reply)))
    HTTPXClientInstrumentor.instrument_client(mock, tracer_provider=provider)
    sdk = openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-x", max_retries=0)
    plain = httpx.Client()
    embedding = {"model": "text-embedding-3-small", "input": "a b"}
    try:
        with sdk, mock, plain, session("sess_freed"):
            sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # warm-up: imports, caches
            gc.collect()
            started.clear()
            gc.disable()
            sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # httpx2, a watched body
            plain.post(gateway.url + "/v1/embeddings", json=embedding).json()  # httpx, a watched body
            mock.post(gateway.url + "/v1/embeddings", json=embedding)  # an in-memory body
            assert len(started) == 3
            # The ids are derived once per context, and the last context is kept (one, for the
            # whole process): reading them here moves it off the last request's span.
            assert alephant_otel.current().session_id == "sess_freed"
            assert [ref() for ref in started] == [None] * 3
            # No response: OpenTelemetry's wrapper frame and the exception hold each other,
            # so these go at the next collection; nothing of this package keeps them longer.
            with pytest.raises(httpx.ConnectError):
                plain.post(f"http://127.0.0.1:{closed_port}/v1/embeddings", json=embedding)
            nowhere = openai.OpenAI(base_url=f"http://127.0.0.1:{closed_port}/v1", api_key="sk-x", max_retries=0)
            with nowhere, pytest.raises(openai.APIConnectionError):
                nowhere.models.list()
            assert len(started) == 5
            gc.collect()
            assert [ref() for ref in started] == [None] * 5
    finally:
        gc.enable()
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=trace.get_tracer_provider())
        provider.shutdown()
