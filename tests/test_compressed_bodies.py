"""Compressed answers, end to end: the watcher sees the bytes on the wire, before httpx decodes them.

httpx and httpx2 ask for ``br`` and ``zstd`` as soon as their decoders are
installed (httpx2 on Python 3.14 asks for ``zstd`` with nothing installed),
and a CDN in front of a gateway answers in whatever the client accepts. The
emulator compresses like one (streams event by event, flushed); the real SDKs
and a plain httpx client (which decodes zstd with ``zstandard``, not the
``compression.zstd`` interface httpx2 uses) read the answers.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

import alephant_otel
from alephant_otel import session
from alephant_otel.testing import GatewayEmulator

MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Where is my order, please?"}]


@pytest.fixture(params=["gzip", "br", "zstd"])
def compressing(request, tracer_provider):
    with GatewayEmulator(content_encoding=request.param) as gw:
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
        yield gw


def _request_spans(spans) -> list:
    found = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]
    return sorted(found, key=lambda s: s.start_time)


def test_compressed_answers_keep_usage_and_cost(compressing: GatewayEmulator, spans) -> None:
    coding = compressing.content_encoding
    with session("sess_compressed"):
        with openai.OpenAI(base_url=compressing.openai_base_url, api_key="sk-x", max_retries=0) as client:
            reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
            chunks = list(
                client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
                )
            )
        with anthropic.Anthropic(base_url=compressing.url, api_key="sk-x", max_retries=0) as claude:
            with claude.messages.stream(model="anthropic/claude-sonnet-4-5", max_tokens=50, messages=MESSAGES) as s:
                message = s.get_final_message()
        with httpx.Client() as plain:
            answer = plain.post(compressing.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    # The answers really were compressed, because the clients asked for it.
    assert all(coding in r.headers["accept-encoding"] for r in compressing.requests)
    assert answer.headers["content-encoding"] == coding
    assert reply.usage is not None and chunks[-1].usage is not None
    expected_in, expected_out = compressing.expected_usage({"messages": MESSAGES})
    spans_ = _request_spans(spans)
    assert len(spans_) == 4
    for span in spans_:
        a = span.attributes
        usage = (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"])
        assert usage == (expected_in, expected_out), span.name
        assert a["alephant.cost.usd"] > 0
        assert "alephant.response.incomplete" not in a
        assert span.status.status_code.name == "UNSET"
    assert spans_[0].attributes["gen_ai.response.id"] == reply.id
    assert spans_[1].attributes["alephant.streaming"] is True
    assert spans_[2].attributes["gen_ai.response.id"] == message.id
    assert message.usage.output_tokens == expected_out


def test_a_coding_the_client_did_not_ask_for_is_not_sent(spans, tracer_provider) -> None:
    with GatewayEmulator(content_encoding="zstd") as gw, httpx.Client() as client:
        answer = client.post(gw.url + "/v1/embeddings", json={"model": "m", "input": "a b"},
                             headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in answer.headers
    assert answer.json()["usage"]["prompt_tokens"] == 2
    with pytest.raises(ValueError, match="content_encoding"):
        GatewayEmulator(content_encoding="compress")
