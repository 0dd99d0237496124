"""Secrets never leave the process in telemetry: every exported byte is searched for them.

Real traffic (the ``openai`` and ``anthropic`` SDKs, raw ``httpx`` and ``httpx2``, sync and async,
plain, streamed, 401 and 429 answers, a retried request, an error raised inside a session) carries
a fresh random secret in each of the places keys travel: ``Authorization: Bearer``, ``x-api-key``,
``api-key`` and the ``api_key``, ``key`` and ``token`` query parameters, to the gateway and to a
host that is not the gateway. Then every byte that leaves through telemetry is searched for the
secret, raw and in its URL-, base64- and hex-encoded forms:

* each span as the SDK hands it to exporters (name, attributes, events, links, status, resource);
* the raw OTLP/HTTP request bodies a real :class:`~alephant_otel.testing.OtlpReceiver` received;
* the OTLP/JSON trace file ``configure(trace_file=...)`` writes;
* every log record of every logger, captured at DEBUG (with the one exception of ``httpx``'s own
  request line, which is not telemetry; see :func:`test_httpx_itself_logs_query_strings`).

Each test first checks that the secret really went over the wire (so a test that sent nothing
cannot pass), and that the URL attributes kept everything but the secret (so redaction does not
simply drop ``url.full``). ``tests/test_spans.py::test_secrets_never_reach_spans`` and
``tests/test_export.py`` already check one fixed key against span JSON and the OTLP bodies; this
module covers the other headers, query parameters, error and streaming paths, logs and encodings.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import anthropic
import httpx
import httpx2
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import run, session
from alephant_otel.testing import Fault, GatewayEmulator, OtlpReceiver

MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "where is my refund"}]
URL_KEYS = ("url.full", "http.url")


def new_secret(*, plain: bool = False) -> str:
    """A distinctive secret; ``/``, ``+`` and ``=`` make its URL-encoded form differ from the raw one."""
    core = uuid.uuid4().hex
    return f"sk-SECRET-{core[:16]}-{core[16:]}" if plain else f"sk-SECRET-{core[:16]}/{core[16:]}+z="


def _b64_forms(data: bytes) -> set[bytes]:
    """Base64 (standard and URL-safe) of ``data`` at all three alignments inside a longer string."""
    out: set[bytes] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data)
        # Drop the characters that mix in the padding before and the bytes after.
        start = 4 if offset else 0
        inner = encoded[start:-4]
        out |= {inner, inner.replace(b"+", b"-").replace(b"/", b"_")}
    return out


def leak_forms(secret: str) -> set[bytes]:
    """Every form in which ``secret`` would be recognisable in an exported byte."""
    core = secret.removeprefix("sk-SECRET-")[:16]  # 16 random hex digits: survive any escaping
    forms = {secret, quote(secret, safe=""), quote_plus(secret), secret.encode().hex(), core}
    raw = {f.encode() for f in forms}
    return raw | _b64_forms(secret.encode()) | _b64_forms(f"Bearer {secret}".encode())


def find_leaks(secret: str, where: dict[str, bytes]) -> list[str]:
    forms = leak_forms(secret)
    return [f"{name}: {form!r}" for name, data in where.items() for form in forms if form in data]


def test_the_detector_finds_every_form() -> None:
    secret = new_secret()
    samples = {
        "raw": f'{{"k": "Bearer {secret}"}}'.encode(),
        "url": f"http://h/p?api_key={quote(secret, safe='')}".encode(),
        "form": f"api_key={quote_plus(secret)}".encode(),
        "b64 bearer": base64.b64encode(f"Bearer {secret}".encode()),
        "b64 inside": base64.b64encode(f"xx:{secret}:yy".encode()),
        "b64url": base64.urlsafe_b64encode(f"y{secret}".encode()),
        "hex": f"x{secret}".encode().hex().encode(),
        "truncated": secret[:30].encode(),
    }
    for name, data in samples.items():
        assert find_leaks(secret, {name: data}), name
    assert not find_leaks(secret, {"other": new_secret().encode()})


@dataclass
class Pipeline:
    """A private tracer provider exporting to memory, a real OTLP receiver and the trace file."""

    gateway: GatewayEmulator
    other: GatewayEmulator
    provider: TracerProvider
    memory: InMemorySpanExporter
    receiver: OtlpReceiver
    trace_file: Path
    caplog: pytest.LogCaptureFixture

    def spans(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.memory.get_finished_spans())

    def exported(self) -> dict[str, bytes]:
        """Every byte that left through telemetry, by where it went."""
        self.provider.force_flush()
        out: dict[str, bytes] = {}
        for i, span in enumerate(self.memory.get_finished_spans()):
            out[f"span {i} {span.name!r}"] = span.to_json(indent=None).encode()
        for i, body in enumerate(self.receiver.raw_bodies):
            out[f"OTLP body {i}"] = body
        out["trace file"] = self.trace_file.read_bytes() if self.trace_file.exists() else b""
        out["logs"] = "\n".join(_log_lines(self.caplog.records)).encode()
        return out

    def assert_no_leak(self, *secrets: str) -> None:
        exported = self.exported()
        assert self.receiver.raw_bodies, "nothing reached the OTLP receiver"
        assert exported["trace file"], "the trace file is empty"
        leaks = [leak for secret in secrets for leak in find_leaks(secret, exported)]
        assert not leaks, "secret exported:\n" + "\n".join(leaks)

    def url_attributes(self) -> list[str]:
        return [str(s.attributes[k]) for s in self.spans() for k in URL_KEYS if k in (s.attributes or {})]


def _is_httpx_request_line(record: logging.LogRecord) -> bool:
    """httpx's (and httpx2's) own INFO line with the request URL: see test_httpx_itself_logs_query_strings."""
    return record.name in {"httpx", "httpx2"} and str(record.msg).startswith("HTTP Request: ")


def _log_lines(records: list[logging.LogRecord], *, all_records: bool = False) -> Iterator[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        if _is_httpx_request_line(record) and not all_records:
            continue
        yield formatter.format(record)
        yield repr(record.args)


@pytest.fixture
def pipeline(tmp_path: Path, tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture) -> Iterator[Pipeline]:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records reach the capture
    with OtlpReceiver() as rx, GatewayEmulator() as gw, GatewayEmulator() as other:
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "secrets-test"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=rx.endpoint + "/v1/traces")))
        trace_file = tmp_path / "traces.otlp.jsonl"
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider, trace_file=trace_file)
        try:
            yield Pipeline(gw, other, provider, memory, rx, trace_file, caplog)
        finally:
            provider.shutdown()
            # Back to the suite's provider: HTTP spans follow configure(tracer_provider=...).
            alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)


def test_openai_sdk_bearer_token(pipeline: Pipeline) -> None:
    secret = new_secret()
    gw = pipeline.gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=secret, max_retries=1)
    gw.add_fault(Fault.status(429, retry_after=0.01), times=1)
    with client, session("sess_sec_openai"), run("run_sec", agent_id="leaky"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # 429, then the retry
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        for _ in stream:
            pass
        client.embeddings.create(model="openai/text-embedding-3-small", input="refund policy")
        gw.add_fault(Fault.status(401, body={"error": {"message": "invalid key", "type": "auth"}}))
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert len(gw.requests) == 5
    assert {r.headers["authorization"] for r in gw.requests} == {f"Bearer {secret}"}
    kinds = [s.attributes.get("alephant.span.kind") for s in pipeline.spans()]
    assert kinds.count("request") == 5
    pipeline.assert_no_leak(secret)


async def test_async_openai_and_anthropic_sdks(pipeline: Pipeline) -> None:
    openai_secret, anthropic_secret, x_api_key = new_secret(), new_secret(), new_secret()
    gw = pipeline.gateway
    oai = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=openai_secret, max_retries=1)
    # This anthropic release sends api_key as a bearer token; x-api-key is what the Messages API
    # documents (and what older releases send), so it goes along as a default header.
    ant = anthropic.AsyncAnthropic(
        base_url=gw.url, api_key=anthropic_secret, max_retries=1, default_headers={"x-api-key": x_api_key}
    )
    async with oai, ant:
        with session("sess_sec_async"):
            gw.add_fault(Fault.status(429, retry_after=0.01), times=1, path="/v1/messages")
            await ant.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=32, messages=MESSAGES)
            async with ant.messages.stream(
                model="anthropic/claude-3-5-haiku-latest", max_tokens=32, messages=MESSAGES
            ) as stream:
                async for _ in stream:
                    pass
            gw.add_fault(Fault.status(401), path="/v1/messages")
            with pytest.raises(anthropic.AuthenticationError):
                await ant.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=32, messages=MESSAGES)
            stream2 = await oai.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            async for _ in stream2:
                pass
    *claude, chat = gw.requests
    assert len(claude) == 4  # the 429, its retry, the stream, the 401
    assert {(r.headers["x-api-key"], r.headers["authorization"]) for r in claude} == {
        (x_api_key, f"Bearer {anthropic_secret}")
    }
    assert chat.headers["authorization"] == f"Bearer {openai_secret}"
    pipeline.assert_no_leak(openai_secret, anthropic_secret, x_api_key)


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("param", ["api_key", "key", "token"])
def test_raw_clients_header_and_query_keys(module, param: str, pipeline: Pipeline) -> None:
    header_secret, query_secret, typed = new_secret(), new_secret(), new_secret(plain=True)
    gw, other = pipeline.gateway, pipeline.other
    body = {"model": MODEL, "messages": MESSAGES}
    with module.Client(headers={"api-key": header_secret}) as client, session("sess_sec_raw"):
        for base in (gw.url, other.url):
            client.post(base + "/v1/chat/completions", params={param: query_secret, "v": "1"}, json=body)
            # The key typed into the URL by hand, unencoded.
            client.post(f"{base}/v1/chat/completions?{param}={typed}&v=2", json=body)
            with client.stream(
                "POST", base + "/v1/chat/completions", params={param: query_secret}, json={**body, "stream": True}
            ) as response:
                for _ in response.iter_lines():
                    pass
        gw.add_fault(Fault.status(401))
        gw.add_fault(Fault.status(429, retry_after=1))
        assert client.get(gw.url + "/v1/models", params={param: query_secret}).status_code == 401
        assert client.get(gw.url + "/v1/models", params={param: query_secret}).status_code == 429
    assert len(gw.requests) == 5
    assert len(other.requests) == 3
    for req in gw.requests + other.requests:
        assert req.headers["api-key"] == header_secret
        assert req.query[param] == [typed if req.query.get("v") == ["2"] else query_secret]
    assert all("alephant-session-id" in r.headers for r in gw.requests)
    urls = pipeline.url_attributes()
    assert len(urls) == 8
    # Redacted, not dropped: host, path and the other parameters are still there.
    assert all(f"{param}=REDACTED" in u and "/v1/" in u for u in urls)
    assert sum("v=2" in u for u in urls) == 2
    pipeline.assert_no_leak(header_secret, query_secret, typed)


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_async_raw_clients(module, pipeline: Pipeline) -> None:
    header_secret, query_secret = new_secret(), new_secret()
    gw = pipeline.gateway
    async with module.AsyncClient(
        headers={"x-api-key": header_secret, "Authorization": f"Bearer {header_secret}"},
        params={"api_key": query_secret},
    ) as client:
        with session("sess_sec_async_raw"), run("run_a", agent_id="a"):
            (await client.post(gw.url + "/v1/embeddings", json={"model": "m", "input": "x"})).raise_for_status()
            async with client.stream(
                "POST", gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, "stream": True}
            ) as response:
                async for _ in response.aiter_bytes():
                    pass
    assert [r.query["api_key"] for r in gw.requests] == [[query_secret]] * 2
    assert {r.headers["x-api-key"] for r in gw.requests} == {header_secret}
    pipeline.assert_no_leak(header_secret, query_secret)


def test_openai_sdk_with_the_key_in_the_gateway_url(pipeline: Pipeline) -> None:
    """Azure-style: the key rides in the query string of every call to the gateway."""
    secret = new_secret()
    gw = pipeline.gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", default_query={"api_key": secret}, max_retries=1)
    gw.add_fault(Fault.status(429, retry_after=0.01), times=1)
    with client, session("sess_sec_query"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass
    assert [r.query["api_key"] for r in gw.requests] == [[secret]] * 3
    assert len(pipeline.url_attributes()) == 3
    pipeline.assert_no_leak(secret)


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_an_error_raised_inside_a_session_keeps_the_key_out(module, pipeline: Pipeline) -> None:
    """``raise_for_status()`` puts the whole URL in its message; the session span records the exception."""
    secret = new_secret()
    gw = pipeline.gateway
    gw.add_fault(Fault.status(401))
    with pytest.raises(module.HTTPStatusError), module.Client() as client, session("sess_sec_raise"):
        client.get(gw.url + "/v1/models", params={"api_key": secret}).raise_for_status()
    assert gw.requests[0].query["api_key"] == [secret]
    (sess,) = [s for s in pipeline.spans() if s.attributes.get("alephant.span.kind") == "session"]
    assert [e.name for e in sess.events] == ["exception"]  # the error is still recorded
    pipeline.assert_no_leak(secret)


def test_httpx_itself_logs_query_strings(pipeline: Pipeline) -> None:
    """The one log line that carries a query-string key is ``httpx``'s own INFO request line.

    That is httpx's behaviour (not telemetry, and not ours to change); nothing from
    ``alephant_otel`` or ``opentelemetry`` ever logs a key, and no logger at all logs a header key.
    """
    secret, header_secret = new_secret(), new_secret()
    with httpx.Client(headers={"authorization": f"Bearer {header_secret}"}) as client, session("sess_log"):
        client.get(pipeline.gateway.url + "/v1/models", params={"api_key": secret})
    records = pipeline.caplog.records
    leaking = [r for r in records if find_leaks(secret, {"": "\n".join(_log_lines([r], all_records=True)).encode()})]
    assert leaking
    assert all(_is_httpx_request_line(r) for r in leaking)
    assert not find_leaks(header_secret, {"logs": "\n".join(_log_lines(records, all_records=True)).encode()})


CAPTURE_ALL_SCRIPT = """
import os, sys
import httpx, openai
import alephant_otel
from alephant_otel import run, session

alephant_otel.configure(gateway_url=os.environ["GW"], trace_file=os.environ["TRACE_FILE"])
secret = os.environ["SECRET"]
client = openai.OpenAI(base_url=os.environ["GW"] + "/v1", api_key=secret, max_retries=0)
with session("sess_capture"), run(agent_id="capture"):
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    with httpx.Client() as raw:
        raw.get(os.environ["GW"] + "/v1/models", headers={"x-api-key": secret, "api-key": secret})
from opentelemetry import trace
trace.get_tracer_provider().shutdown()
"""


def test_captured_request_headers_are_redacted(tmp_path: Path) -> None:
    """``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST=".*"`` records every request header
    on the span; credentials among them are redacted even when the user set no sanitize list."""
    import subprocess
    import sys

    from _util import ROOT, clean_env

    secret = new_secret()
    trace_file = tmp_path / "capture.otlp.jsonl"
    with GatewayEmulator() as gw:
        env = clean_env(
            GW=gw.url,
            SECRET=secret,
            TRACE_FILE=str(trace_file),
            OTEL_TRACES_EXPORTER="none",
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST=".*",
        )
        done = subprocess.run(
            [sys.executable, "-c", CAPTURE_ALL_SCRIPT],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert next(r.headers.get("authorization") for r in gw.requests) == f"Bearer {secret}"
    data = trace_file.read_bytes()
    # The capture really happened (so the test can fail): other request headers are on the spans.
    assert b"http.request.header.user_agent" in data
    assert b"http.request.header.authorization" in data
    assert b"[Scrubbed due to 'authorization']" in data
    assert find_leaks(secret, {"trace file": data}) == []
    assert find_leaks(secret, {"stderr": done.stderr.encode(), "stdout": done.stdout.encode()}) == []


def test_attributes_scrub_the_same_once_their_names_are_known() -> None:
    """The second look at the same names takes the values-only path: it must scrub exactly as the first."""
    from alephant_otel.redact._scrub import scrub_attributes, set_extra_patterns

    set_extra_patterns()  # a fresh scrubber: no name or value known yet
    token = "sk-" + uuid.uuid4().hex
    attrs = {
        "http.url": "https://gw.example/v1/chat",
        "gen_ai.usage.input_tokens": 12,
        "alephant.cost.usd": 0.5,
        "flag": True,
        "gen_ai.response.finish_reasons": ("stop",),
        "note": f"Authorization: Bearer {token}",
        "keys": ("fine", token),
        "x-api-key": "abc123secret",
    }
    first = scrub_attributes(attrs)
    second = scrub_attributes(attrs)
    assert first == second
    assert second is not None
    assert list(second) == list(attrs)
    assert token not in repr(second)
    assert second["x-api-key"] == "[Scrubbed due to 'x-api-key']"
    assert second["keys"][0] == "fine"
    assert {k: second[k] for k in ("http.url", "gen_ai.usage.input_tokens", "alephant.cost.usd", "flag")} == {
        k: attrs[k] for k in ("http.url", "gen_ai.usage.input_tokens", "alephant.cost.usd", "flag")
    }
    plain = {k: v for k, v in attrs.items() if k not in ("note", "keys", "x-api-key")}
    assert scrub_attributes(plain) is None
    assert scrub_attributes(plain) is None  # the clean tuple, now known
    listed = {"http.url": "https://gw.example/v1", "keys": ["fine", token]}
    assert scrub_attributes(listed) == scrub_attributes(listed) == {
        "http.url": "https://gw.example/v1",
        "keys": ("fine", "[Scrubbed due to 'gateway key']"),
    }
