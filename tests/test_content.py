"""Content capture (issue 33): off by default; on, the conversation per the GenAI conventions.

Real traffic through the real ``openai`` and ``anthropic`` SDKs to the gateway emulator, exported
by the real OTLP/HTTP exporter to a real receiver and by the trace file writer. Every message
written is validated against the conventions' JSON schemas (vendored with the semconv model).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import _names as n
from alephant_otel import session
from alephant_otel.record._contentcap import resolve_capture
from alephant_otel.testing import GatewayEmulator, OtlpReceiver

MODEL = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-3-5-haiku-latest"
SCHEMAS = Path(__file__).parent / "fixtures" / "semconv"
ENV = (n.ENV_CAPTURE_CONTENT, n.ENV_CONTENT_MESSAGE_LIMIT, n.ENV_CONTENT_SPAN_LIMIT)


def _schema(name: str) -> Callable[[Any], None]:
    schema = json.loads((SCHEMAS / f"gen-ai-{name}.json").read_text())
    return jsonschema.Draft202012Validator(schema).validate


VALID_INPUT = _schema("input-messages")
VALID_OUTPUT = _schema("output-messages")
VALID_SYSTEM = _schema("system-instructions")


@pytest.fixture(autouse=True)
def _no_capture_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def _marks() -> dict[str, str]:
    """Fresh marker words, one per place a prompt can be."""
    tag = uuid.uuid4().hex[:10]
    return {k: f"MARK{k}{tag}" for k in ("SYSTEM", "USER", "STREAM", "RESPONSES", "ANTHROPIC", "ANTHSYS")}


def _traffic(gw: GatewayEmulator, marks: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    claude = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-test-content-0000", max_retries=0)
    with client, claude, session("sess_content"):
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": f"You are terse {marks['SYSTEM']}"},
                {"role": "user", "content": f"where is my refund {marks['USER']}"},
            ],
        )
        stream = client.chat.completions.create(
            model=MODEL, stream=True, messages=[{"role": "user", "content": f"stream this {marks['STREAM']} now"}]
        )
        for _ in stream:
            pass
        client.responses.create(model=MODEL, input=f"responses {marks['RESPONSES']}", instructions="Be brief")
        claude.messages.create(
            model=CLAUDE,
            max_tokens=64,
            system=f"Support agent {marks['ANTHSYS']}",
            messages=[{"role": "user", "content": f"hello {marks['ANTHROPIC']}"}],
        )


@pytest.fixture
def pipeline(tmp_path: Path, tracer_provider: TracerProvider) -> Iterator[Callable[..., tuple[OtlpReceiver, Path]]]:
    """Run the traffic through a provider of its own with OTLP/HTTP and the trace file; configure() kwargs given."""
    opened: list[Any] = []

    def run(marks: dict[str, str], **kwargs: Any) -> tuple[OtlpReceiver, Path]:
        rx = OtlpReceiver().__enter__()
        gw = GatewayEmulator().__enter__()
        opened.extend([gw, rx])
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=rx.endpoint + "/v1/traces")))
        trace_file = tmp_path / f"traces-{len(opened)}.otlp.jsonl"
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider, trace_file=trace_file, **kwargs)
        try:
            _traffic(gw, marks)
            provider.force_flush()
        finally:
            provider.shutdown()
            alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
        sent = b"".join(r.body for r in gw.requests)
        assert all(m.encode() in sent for m in marks.values())  # the prompts did go over the wire
        return rx, trace_file

    yield run
    for server in opened:
        server.__exit__(None, None, None)


def _exported(rx: OtlpReceiver, trace_file: Path) -> bytes:
    return b"".join(rx.raw_bodies) + trace_file.read_bytes()


def test_off_by_default_no_prompt_byte_is_exported(pipeline: Callable[..., tuple[OtlpReceiver, Path]]) -> None:
    marks = _marks()
    rx, trace_file = pipeline(marks)
    exported = _exported(rx, trace_file)
    assert b"gen_ai.input.messages" not in exported
    assert [m for m in marks.values() if m.encode() in exported] == []
    assert len([s for s in rx.spans if s.attributes.get(n.ATTR_SPAN_KIND) == "request"]) == 4
    # The same traffic with capture on puts every marker in both (this test can fail).
    marks = _marks()
    rx, trace_file = pipeline(marks, capture_content=True)
    exported = _exported(rx, trace_file)
    assert [m for m in marks.values() if m.encode() not in exported] == []


def _requests(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get(n.ATTR_SPAN_KIND) == "request"]


def _content(span: ReadableSpan) -> tuple[list[Any], list[Any], list[Any]]:
    attrs = span.attributes or {}
    system = json.loads(str(attrs.get(n.GEN_AI_SYSTEM_INSTRUCTIONS, "[]")))
    inputs = json.loads(str(attrs.get(n.GEN_AI_INPUT_MESSAGES, "[]")))
    outputs = json.loads(str(attrs.get(n.GEN_AI_OUTPUT_MESSAGES, "[]")))
    VALID_SYSTEM(system)
    VALID_INPUT(inputs)
    VALID_OUTPUT(outputs)
    return system, inputs, outputs


def _texts(messages: list[Any]) -> list[str]:
    return [p["content"] for m in messages for p in m["parts"] if p["type"] == "text"]


@pytest.fixture
def capture(gateway: GatewayEmulator, tracer_provider: TracerProvider) -> Iterator[GatewayEmulator]:
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider, capture_content=True)
    yield gateway
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)


def test_on_chat_stream_responses_and_anthropic_carry_input_and_output(
    capture: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    marks = _marks()
    _traffic(capture, marks)
    chat, stream, responses, claude = _requests(list(spans.get_finished_spans()))

    system, inputs, outputs = _content(chat)
    assert system == []  # chat's system message is part of the history
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert _texts(inputs) == [f"You are terse {marks['SYSTEM']}", f"where is my refund {marks['USER']}"]
    assert outputs[0]["role"] == "assistant" and outputs[0]["finish_reason"] == "stop"
    assert marks["USER"] in _texts(outputs)[0]

    _, inputs, outputs = _content(stream)
    assert _texts(inputs) == [f"stream this {marks['STREAM']} now"]
    # Assembled from the chunks: the emulator's whole reply, one part, not a word per chunk.
    (reply,) = _texts(outputs)
    assert reply.strip() == f"Thanks for asking about stream this {marks['STREAM']} now. Here is what I found for you."
    assert stream.attributes is not None and stream.attributes[n.GEN_AI_REQUEST_STREAM] is True

    system, inputs, outputs = _content(responses)
    assert [p["content"] for p in system] == ["Be brief"]
    assert _texts(inputs) == [f"responses {marks['RESPONSES']}"]
    assert marks["RESPONSES"] in _texts(outputs)[0]

    system, inputs, outputs = _content(claude)
    assert [p["content"] for p in system] == [f"Support agent {marks['ANTHSYS']}"]
    assert _texts(inputs) == [f"hello {marks['ANTHROPIC']}"]
    assert marks["ANTHROPIC"] in _texts(outputs)[0] and outputs[0]["finish_reason"] == "stop"


def test_streamed_anthropic_and_responses_replies_are_assembled(
    capture: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    claude = anthropic.Anthropic(base_url=capture.url, api_key="sk-ant-test-content-0000", max_retries=0)
    with client, claude:
        with client.responses.create(model=MODEL, input="stream a response", stream=True) as events:
            for _ in events:
                pass
        with claude.messages.stream(
            model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi there"}]
        ) as s:
            for _ in s.text_stream:
                pass
    responses, claude_span = _requests(list(spans.get_finished_spans()))
    assert _texts(_content(responses)[2]) == [
        "Thanks for asking about stream a response. Here is what I found for you."
    ]
    assert (
        _texts(_content(claude_span)[2])[0].strip() == "Thanks for asking about hi there. Here is what I found for you."
    )


def test_tool_calls_and_results_are_message_parts(spans: InMemorySpanExporter, tracer_provider: TracerProvider) -> None:
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
    with GatewayEmulator(tool_calls=True) as gw:
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider, capture_content="SPAN_ONLY")
        try:
            client = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
            history: list[Any] = [{"role": "user", "content": "where is order 42"}]
            calls: dict[int, Any] = {}
            with client.chat.completions.create(model=MODEL, messages=history, tools=tools, stream=True) as chunks:
                for chunk in chunks:
                    for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                        slot = calls.setdefault(call.index, {"id": call.id, "name": None, "args": ""})
                        slot["name"] = slot["name"] or (call.function.name if call.function else None)
                        slot["args"] += (call.function.arguments or "") if call.function else ""
            (call,) = calls.values()
            history += [
                {"role": "assistant", "tool_calls": [{"id": call["id"], "type": "function",
                                                      "function": {"name": call["name"], "arguments": call["args"]}}]},
                {"role": "tool", "tool_call_id": call["id"], "content": "shipped yesterday"},
            ]  # fmt: skip
            client.chat.completions.create(model=MODEL, messages=history, tools=tools)
            client.close()
        finally:
            alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
    first, second = _requests(list(spans.get_finished_spans()))
    _, _, outputs = _content(first)
    (part,) = outputs[0]["parts"]
    assert outputs[0]["finish_reason"] == "tool_call"
    # The arguments arrive in pieces over several chunks; assembled, they are the object itself.
    assert part == {
        "type": "tool_call",
        "id": call["id"],
        "name": "lookup_order",
        "arguments": json.loads(call["args"]),
    }
    _, inputs, _ = _content(second)
    assert inputs[1]["parts"] == [part]
    assert inputs[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call["id"], "response": "shipped yesterday"}],
    }


def test_a_credential_inside_a_prompt_is_scrubbed(capture: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    core = uuid.uuid4().hex
    key, password = f"sk-proj-{core}", f"pw{core[:12]}"
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    prompt = f"my key is {key} and password: {password} please check"
    with client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
    assert key in capture.requests[-1].body.decode()  # it went to the gateway
    (span,) = _requests(list(spans.get_finished_spans()))
    _, inputs, _ = _content(span)  # still valid JSON after scrubbing
    dumped = json.dumps([span.attributes.get(k) for k in span.attributes or {}])
    assert key not in dumped and core[:16] not in dumped and password not in dumped
    assert "[Scrubbed due to 'gateway key']" in _texts(inputs)[0]
    assert "please check" in _texts(inputs)[0]  # the rest of the prompt is kept


# Prompts where scrubbing the JSON text alone once broke it: a value ran into a ``\"`` escape.
AWKWARD = (
    "\"\u00e9secret=':=\\=",
    "=ghp_" + "a" * 36 + ':key=val;token=abc123def456\u00e9"api_key": "sk-abcdefgh12345678"\t',
    '\\\nkey=val;secret\\="\u00e9\x01 ',
)


def test_scrubbed_content_stays_valid_json(capture: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    with client:
        for prompt in AWKWARD:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
    requests = _requests(list(spans.get_finished_spans()))
    assert len(requests) == len(AWKWARD)
    for span in requests:
        _, inputs, _ = _content(span)  # parses and validates against the schemas
        text = _texts(inputs)[0]
        assert "sk-abcdefgh12345678" not in text and "abc123def456" not in text and "ghp_aaaa" not in text


def test_a_1mb_prompt_is_cut_to_the_caps_with_a_marker(capture: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    big = "lorem ipsum dolor " * ((1 << 20) // 18 + 1)
    assert len(big) >= 1_000_000
    with client:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "short rules"}, {"role": "user", "content": "BEGIN " + big}],
        )
    (span,) = _requests(list(spans.get_finished_spans()))
    _, inputs, outputs = _content(span)
    sizes = [len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()) for m in inputs + outputs]
    assert max(sizes) <= 16 << 10
    total = sum(
        len(str(v).encode()) for k, v in (span.attributes or {}).items() if k.startswith("gen_ai.") and "messages" in k
    )
    assert total <= 64 << 10
    system, user = _texts(inputs)
    assert system == "short rules"  # not dropped, not cut
    assert user.startswith("BEGIN lorem ipsum") and "…[truncated: " in user and user.endswith(" more characters]")
    dropped = int(user.rsplit("[truncated: ", 1)[1].split(" ", 1)[0])
    assert dropped > 1_000_000 - (16 << 10)


def test_caps_are_configurable_by_argument_and_environment(
    capture: GatewayEmulator,
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    tracer_provider: TracerProvider,
) -> None:
    monkeypatch.setenv(n.ENV_CAPTURE_CONTENT, "true")
    monkeypatch.setenv(n.ENV_CONTENT_MESSAGE_LIMIT, "1024")
    alephant_otel.configure(gateway_url=capture.url, tracer_provider=tracer_provider)
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    with client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 5000}])
        alephant_otel.configure(gateway_url=capture.url, tracer_provider=tracer_provider, content_message_limit=2048)
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y" * 5000}])
    first, second = _requests(list(spans.get_finished_spans()))
    assert 900 < len(str((first.attributes or {})[n.GEN_AI_INPUT_MESSAGES])) <= 1024 + 2
    assert 1900 < len(str((second.attributes or {})[n.GEN_AI_INPUT_MESSAGES])) <= 2048 + 2
    with pytest.raises(ValueError, match="content_span_limit"):
        alephant_otel.configure(gateway_url=capture.url, tracer_provider=tracer_provider, content_span_limit=10)


def test_an_image_is_recorded_by_type_and_size(capture: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    image = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 300  # 4,808 bytes
    data = base64.b64encode(image).decode()
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    with client:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "what is in this picture"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ]}],
        )  # fmt: skip
    (span,) = _requests(list(spans.get_finished_spans()))
    _, inputs, _ = _content(span)
    assert inputs[0]["parts"] == [
        {"type": "text", "content": "what is in this picture"},
        {"type": "blob", "modality": "image", "mime_type": "image/png", "size": len(image)},
        {"type": "uri", "modality": "image", "uri": "https://example.com/cat.jpg"},
    ]
    assert data[100:140] not in json.dumps(dict(span.attributes or {}))


def test_embeddings_record_their_inputs_only(capture: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    with client:
        client.embeddings.create(model="openai/text-embedding-3-small", input=["first text", "second text"])
    (span,) = _requests(list(spans.get_finished_spans()))
    _, inputs, _ = _content(span)
    assert _texts(inputs) == ["first text", "second text"]
    assert n.GEN_AI_OUTPUT_MESSAGES not in (span.attributes or {})


@pytest.mark.parametrize(
    ("value", "on_span", "on_event"),
    [
        ("true", True, False),
        ("TRUE", True, False),
        ("false", False, False),
        ("NO_CONTENT", False, False),
        ("SPAN_ONLY", True, False),
        ("EVENT_ONLY", False, True),
        ("span_and_event", True, True),
    ],
)
def test_the_standard_switch_and_its_modes(
    value: str, on_span: bool, on_event: bool, monkeypatch: pytest.MonkeyPatch,
    gateway: GatewayEmulator, spans: InMemorySpanExporter, tracer_provider: TracerProvider,
) -> None:  # fmt: skip
    monkeypatch.setenv(n.ENV_CAPTURE_CONTENT, value)
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    with client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "switch test"}])
    (span,) = _requests(list(spans.get_finished_spans()))
    assert (n.GEN_AI_INPUT_MESSAGES in (span.attributes or {})) is on_span
    events = [e for e in span.events if e.name == n.EVENT_INFERENCE_DETAILS]
    assert len(events) == (1 if on_event else 0)
    if on_event:
        attrs = events[0].attributes or {}
        VALID_INPUT(json.loads(str(attrs[n.GEN_AI_INPUT_MESSAGES])))
        assert "switch test" in str(attrs[n.GEN_AI_OUTPUT_MESSAGES])


def test_configure_overrides_the_environment_and_checks_its_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {n.ENV_CAPTURE_CONTENT: "true"}
    assert resolve_capture(False, env=env) is None
    assert resolve_capture(None, env=env) is not None
    capture = resolve_capture("EVENT_ONLY", env={})
    assert capture is not None and (capture.on_span, capture.on_event) == (False, True)
    with pytest.raises(ValueError, match="capture_content"):
        resolve_capture("sometimes", env={})


def test_a_bad_switch_value_logs_once_and_stays_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert resolve_capture(None, env={n.ENV_CAPTURE_CONTENT: "maybe"}) is None
        assert resolve_capture(None, env={n.ENV_CONTENT_MESSAGE_LIMIT: "tiny", n.ENV_CAPTURE_CONTENT: "1"}) is not None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"ignoring {n.ENV_CAPTURE_CONTENT}='maybe'",
        f"ignoring {n.ENV_CONTENT_MESSAGE_LIMIT}='tiny'",
    ]


def test_two_exporters_get_the_same_content_built_once(
    capture: GatewayEmulator, spans: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    second = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(second))
    client = openai.OpenAI(base_url=capture.openai_base_url, api_key="sk-test-content-0000", max_retries=0)
    with client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "two exporters"}])
    second.shutdown()  # stops taking spans; the processor stays on the shared provider
    (a,) = _requests(list(spans.get_finished_spans()))
    (b,) = _requests(list(second.get_finished_spans()))
    assert (a.attributes or {})[n.GEN_AI_INPUT_MESSAGES] == (b.attributes or {})[n.GEN_AI_INPUT_MESSAGES]
    assert "two exporters" in str((a.attributes or {})[n.GEN_AI_INPUT_MESSAGES])
