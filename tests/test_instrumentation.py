"""Living with other instrumentation: idempotent configure(), user hooks kept, no double spans."""

from __future__ import annotations

import asyncio
import json

import httpx
import httpx2
import pytest
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider

import alephant_otel
from alephant_otel import session
from alephant_otel.testing import GatewayEmulator


def test_configure_is_idempotent(tmp_path, gateway: GatewayEmulator, tracer_provider) -> None:
    provider = TracerProvider()
    trace_file = tmp_path / "t.jsonl"
    try:
        for _ in range(3):
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=provider, trace_file=trace_file)
        with session("sess_idem"), httpx.Client() as client:
            client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
        provider.force_flush()
    finally:
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    names = [sp["name"] for line in trace_file.read_text().splitlines()
             for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]
    assert sorted(names) == ["embeddings m", "session"]  # each span once, one HTTP span
    assert len(gateway.requests) == 1


@pytest.mark.parametrize(
    ("module", "instrumentor"), [(httpx, HTTPXClientInstrumentor), (httpx2, HTTPX2ClientInstrumentor)]
)
def test_user_hooks_are_kept_and_ours_chained(
    module, instrumentor, gateway: GatewayEmulator, spans, tracer_provider
) -> None:
    seen: list[str] = []

    def mine(span, request) -> None:
        seen.append(str(request.url))

    async def mine_async(span, request) -> None:
        seen.append("async " + str(request.url))

    inst = instrumentor()
    inst.uninstrument()
    try:
        inst.instrument(tracer_provider=tracer_provider, request_hook=mine, async_request_hook=mine_async)
        with session("sess_hooks"):
            with module.Client() as client:
                client.get(gateway.url + "/v1/models")

            async def go() -> None:
                async with module.AsyncClient() as aclient:
                    await aclient.get(gateway.url + "/v1/models")

            asyncio.run(go())
    finally:
        inst.uninstrument()
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    assert seen == [gateway.url + "/v1/models", "async " + gateway.url + "/v1/models"]
    assert [r.headers.get("alephant-session-id") for r in gateway.requests] == ["sess_hooks", "sess_hooks"]


def test_instrument_client_on_top_of_global_instrumentation_makes_no_double_span(
    gateway: GatewayEmulator, spans
) -> None:
    client = httpx.Client()
    HTTPXClientInstrumentor().instrument_client(client)
    with session("sess_once"), client:
        client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
    http_spans = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]
    assert len(http_spans) == 1
    assert gateway.requests[0].headers["alephant-session-id"] == "sess_once"


def test_instrument_client_alone_gets_our_hooks(gateway: GatewayEmulator, spans, tracer_provider) -> None:
    HTTPXClientInstrumentor().uninstrument()
    try:
        client = httpx.Client()
        HTTPXClientInstrumentor().instrument_client(client, tracer_provider=tracer_provider)
        with session("sess_client"), client:
            client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
    finally:
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    assert gateway.requests[0].headers["alephant-session-id"] == "sess_client"
    (span,) = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]
    assert span.attributes["alephant.request.id"] == gateway.requests[0].headers["x-request-id"]
