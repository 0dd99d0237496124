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


@pytest.mark.parametrize("how", ["instrument", "instrument_client"])
def test_a_hook_of_the_wrong_kind_is_left_out_with_a_warning(
    how: str, gateway: GatewayEmulator, spans, tracer_provider, caplog
) -> None:
    # OpenTelemetry alone drops a plain function given as an async hook. Chained with ours into
    # an async hook, it made every async request raise TypeError ("can't be used in 'await'").
    called: list[str] = []

    def plain_hook(span, request) -> None:
        called.append("plain")

    async def async_hook(span, request) -> None:
        called.append("async")

    inst = HTTPX2ClientInstrumentor()
    async def go(aclient) -> int:
        async with aclient:
            return (await aclient.get(gateway.url + "/v1/models")).status_code

    try:
        if how == "instrument":
            inst.uninstrument()
            inst.instrument(tracer_provider=tracer_provider, request_hook=async_hook, async_request_hook=plain_hook)
            aclient, client = httpx2.AsyncClient(), httpx2.Client()
        else:
            aclient, client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(200))), None
            inst.instrument_client(aclient, tracer_provider=tracer_provider, request_hook=plain_hook)
        with session("sess_misfit"):
            assert asyncio.run(go(aclient)) == 200
            if client is not None:
                with client:
                    assert client.get(gateway.url + "/v1/models").status_code == 200
    finally:
        inst.uninstrument()
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    assert called == []
    if how == "instrument":
        assert [r.headers.get("alephant-session-id") for r in gateway.requests] == ["sess_misfit"] * 2
    warned = [r.getMessage() for r in caplog.records if "is not called" in r.getMessage()]
    assert any("plain_hook" in m and "async def" in m for m in warned)
    assert ("async_hook" in " ".join(warned)) == (how == "instrument")


@pytest.mark.parametrize(
    ("module", "instrumentor"), [(httpx, HTTPXClientInstrumentor), (httpx2, HTTPX2ClientInstrumentor)]
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_instrument_client_traces_a_custom_transport_under_global_instrumentation(
    module, instrumentor, is_async: bool, spans, tracer_provider
) -> None:
    # Global instrumentation wraps httpx's own transports only; a client on a custom transport
    # (here MockTransport, as in a user's unit tests) is traced once instrument_client is called
    # on it, as with OpenTelemetry alone. Its in-memory response body is read at once.
    gateway_url = "http://gateway.test"
    sent: list[str | None] = []
    reply = {"object": "list", "model": "text-embedding-3-small", "data": [], "usage": {"prompt_tokens": 7}}

    def answer(request):
        sent.append(request.headers.get("alephant-session-id"))
        return module.Response(200, json=reply)

    async def answer_async(request):
        return answer(request)

    async def post_async(client) -> None:
        async with client:
            for _ in range(2):
                await client.post(gateway_url + "/v1/embeddings", json={"model": "text-embedding-3-small"})

    def post(client) -> None:
        if is_async:
            asyncio.run(post_async(client))
            return
        with client:
            for _ in range(2):
                client.post(gateway_url + "/v1/embeddings", json={"model": "text-embedding-3-small"})

    def new_client():
        if is_async:
            return module.AsyncClient(transport=module.MockTransport(answer_async))
        return module.Client(transport=module.MockTransport(answer))

    alephant_otel.configure(gateway_url=gateway_url, tracer_provider=tracer_provider)
    with session("sess_mock"):
        post(new_client())
        assert sent == [None, None]  # not instrumented: untouched, as with OpenTelemetry alone
        assert not spans.get_finished_spans()
        client = new_client()
        instrumentor.instrument_client(client, tracer_provider=tracer_provider)
        post(client)
    assert sent[2:] == ["sess_mock", "sess_mock"]
    first, second = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]
    for span in (first, second):
        assert span.attributes["alephant.span.kind"] == "request"
        assert span.attributes["gen_ai.usage.input_tokens"] == 7
        assert "alephant.response.incomplete" not in span.attributes
    # Ended when the response came back, not whenever the response object was collected.
    assert first.end_time <= second.start_time


def test_a_large_in_memory_body_still_gives_its_usage(spans, tracer_provider) -> None:
    # Past 1 MiB only the head and tail are kept, through the same BodyWatcher as a
    # stream's body; the usage at the end of a large embeddings body is still found.
    vectors = [{"object": "embedding", "index": i, "embedding": [0.125] * 256} for i in range(1200)]
    reply = {"object": "list", "data": vectors, "model": "text-embedding-3-small", "usage": {"prompt_tokens": 4321}}
    body = json.dumps(reply).encode()
    assert len(body) > 2 << 20
    client = httpx2.Client(transport=httpx2.MockTransport(lambda request: httpx2.Response(200, content=body)))
    alephant_otel.configure(gateway_url="http://gateway.test", tracer_provider=tracer_provider)
    HTTPX2ClientInstrumentor().instrument_client(client, tracer_provider=tracer_provider)
    with session("sess_big"), client:
        assert len(client.post("http://gateway.test/v1/embeddings", json={"model": "m"}).content) == len(body)
    (span,) = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]
    assert span.attributes["gen_ai.usage.input_tokens"] == 4321
    assert span.attributes["gen_ai.response.model"] == "text-embedding-3-small"
