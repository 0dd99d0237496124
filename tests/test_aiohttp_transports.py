"""aiohttp-backed clients: the SDKs' ``DefaultAioHttpClient`` and the ``httpx-aiohttp`` package.

They send through their own ``AiohttpTransport``, which the httpx
instrumentation does not wrap; before this was handled, their gateway requests
went out with no alephant header and no span, silently. Real aiohttp sockets
to the emulator on loopback, driven by the real SDKs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anthropic
import httpx_aiohttp
import httpx_aiohttp.httpx2
import openai
import pytest
from _util import BIN, clean_env, wait_for
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

import alephant_otel
from alephant_otel import run, session
from alephant_otel.testing import GatewayEmulator, OtlpReceiver

MESSAGES = [{"role": "user", "content": "Where is my order?"}]


def _client_spans(spans) -> list:
    return [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]


def _request_spans(spans) -> list:
    return [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]


async def test_openai_aiohttp_client_sends_the_ids_and_records_usage(gateway: GatewayEmulator, spans) -> None:
    async with openai.AsyncOpenAI(
        base_url=gateway.openai_base_url, api_key="test", http_client=openai.DefaultAioHttpClient()
    ) as client:
        with session("sess_aio", name="Refund"), run("run_aio", agent_id="triage"):
            reply = await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert reply.usage is not None and text
    first, second = gateway.requests
    for req in (first, second):
        assert req.headers["alephant-session-id"] == "sess_aio"
        assert req.headers["alephant-session-name"] == "Refund"
        assert req.headers["alephant-run-id"] == "run_aio"
        assert req.headers["alephant-agent-id"] == "triage"
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    # One CLIENT span per request (the aiohttp transport is not traced twice), each a request span.
    assert len(_client_spans(spans)) == 2
    plain, streamed = sorted(_request_spans(spans), key=lambda s: s.start_time)
    assert plain.attributes["alephant.request.id"] == first.headers["x-request-id"]
    assert plain.attributes["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert plain.attributes["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert plain.attributes["alephant.cost.usd"] > 0
    assert streamed.attributes["alephant.streaming"] is True
    assert streamed.attributes["gen_ai.usage.output_tokens"] > 0
    assert "alephant.response.incomplete" not in streamed.attributes
    (run_span,) = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "run"]
    assert {plain.parent.span_id, streamed.parent.span_id} == {run_span.context.span_id}
    assert run_span.attributes["alephant.total.requests"] == 2


async def test_anthropic_aiohttp_client_streams_with_usage(gateway: GatewayEmulator, spans) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key="test", http_client=anthropic.DefaultAioHttpClient()
    ) as client:
        with session("sess_claude"):
            async with client.messages.stream(
                model="anthropic/claude-sonnet-4-5", max_tokens=100, messages=MESSAGES
            ) as stream:
                final = await stream.get_final_message()
    (req,) = gateway.requests
    assert req.headers["alephant-session-id"] == "sess_claude"
    (span,) = _request_spans(spans)
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert span.status.status_code.name == "UNSET"


async def test_a_stream_left_early_ends_its_span(gateway: GatewayEmulator, spans) -> None:
    # aiohttp reads up to 16 KB at a time: space the chunks so the first read is not the whole stream.
    gateway.chunk_delay = 0.02
    async with openai.AsyncOpenAI(
        base_url=gateway.openai_base_url, api_key="test", http_client=openai.DefaultAioHttpClient()
    ) as client:
        with session("sess_break"):
            stream = await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True)
            async for _ in stream:
                break
            await stream.close()
    (span,) = _request_spans(spans)
    assert span.end_time is not None
    assert span.attributes["alephant.response.incomplete"] is True
    assert span.status.status_code.name == "UNSET"  # the caller stopped reading: nothing failed


@pytest.mark.parametrize(
    "client_class", [httpx_aiohttp.HttpxAiohttpClient, httpx_aiohttp.httpx2.Httpx2AiohttpClient],
    ids=["httpx", "httpx2"],
)
async def test_httpx_aiohttp_package_headers_go_to_the_gateway_only(
    client_class, gateway: GatewayEmulator, other_server: GatewayEmulator, spans
) -> None:
    body = {"model": "openai/text-embedding-3-small", "input": "x"}
    async with client_class() as client:
        with session("sess_pkg"):
            to_gateway = await client.post(gateway.url + "/v1/embeddings", json=body)
            to_other = await client.post(other_server.url + "/v1/embeddings", json=body)
    assert to_gateway.status_code == to_other.status_code == 200
    assert gateway.requests[0].headers["alephant-session-id"] == "sess_pkg"
    assert not any(k.startswith("alephant-") or k == "x-request-id" for k in other_server.requests[0].headers)
    (span,) = _request_spans(spans)
    assert span.attributes["gen_ai.usage.input_tokens"] > 0
    assert len(_client_spans(spans)) == 2  # the other server's request is traced too, as a plain HTTP span


async def test_aiohttp_transport_follows_the_instrumentation_off_and_on(
    gateway: GatewayEmulator, spans, tracer_provider
) -> None:
    async def one_request(client) -> None:
        with session("sess_toggle"):
            await client.get(gateway.url + "/v1/models")

    inst = HTTPX2ClientInstrumentor()
    async with httpx_aiohttp.httpx2.Httpx2AiohttpClient() as client:
        inst.uninstrument()
        try:
            await one_request(client)
            assert "alephant-session-id" not in gateway.requests[-1].headers
            assert not _client_spans(spans)
        finally:
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
        await one_request(client)
    assert gateway.requests[-1].headers["alephant-session-id"] == "sess_toggle"
    assert len(_client_spans(spans)) == 1


async def test_instrument_client_then_global_instrumentation_makes_one_span(
    gateway: GatewayEmulator, spans, tracer_provider
) -> None:
    inst = HTTPX2ClientInstrumentor()
    inst.uninstrument()
    try:
        client = openai.DefaultAioHttpClient()
        inst.instrument_client(client, tracer_provider=tracer_provider)
    finally:
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    async with client:
        with session("sess_twice"):
            await client.get(gateway.url + "/v1/models")
    assert gateway.requests[0].headers["alephant-session-id"] == "sess_twice"
    assert len(_client_spans(spans)) == 1


APP = """
import asyncio, openai
from opentelemetry import baggage, context

async def main():
    ctx = baggage.set_baggage("alephant.session.id", "zero-code-aio")
    token = context.attach(ctx)
    try:
        async with openai.AsyncOpenAI(http_client=openai.DefaultAioHttpClient()) as client:
            await client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        context.detach(token)

asyncio.run(main())
"""


def test_zero_code_covers_the_aiohttp_client(tmp_path: Path) -> None:
    # Under opentelemetry-instrument the SDK is imported after set-up: the import hook path.
    app = tmp_path / "aio_app.py"
    app.write_text(APP)
    with GatewayEmulator() as gw, OtlpReceiver() as rx:
        env = clean_env(
            ALEPHANT_GATEWAY_URL=gw.url,
            OPENAI_BASE_URL=gw.openai_base_url,
            OPENAI_API_KEY="test",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
        )
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(app)],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        (req,) = gw.requests
        assert req.headers["alephant-session-id"] == "zero-code-aio"
        (span,) = wait_for(lambda: [s for s in rx.spans if s.attributes.get("alephant.span.kind") == "request"])
        assert span.attributes["alephant.session.id"] == "zero-code-aio"
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
