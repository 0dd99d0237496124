"""Response parsing: every supported body shape, cut and broken bodies, policy detection.

Payloads are validated against the installed OpenAI and Anthropic SDK types
(``sdk(...)``), so their shapes are the ones the real APIs send.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import zlib
from typing import Any

import pytest
from anthropic import types as at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import types as ot
from openai.types import chat as oc
from openai.types import responses as orsp

from alephant_otel.record import _acc, _requestbody, _sse
from alephant_otel.record._acc import ParsedResponse, PolicyHit
from alephant_otel.record._requestbody import operation_for_path, provider_for, request_model
from alephant_otel.record._usage import parse_response

#: Examples per property test; the slow-marked variants run SLOW_EXAMPLES.
EXAMPLES = 300
SLOW_EXAMPLES = 10_000

SSE = "text/event-stream"
JSON = "application/json"
HEAD, TAIL, WHOLE_LIMIT = 64 << 10, 256 << 10, 1 << 20


def sdk(model: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the API sends it, after checking it against the SDK type."""
    return model.model_validate(payload).model_dump(mode="json")


def sse(events: list[dict[str, Any]], *, done: bool = False, named: bool = False, nl: str = "\n") -> bytes:
    out = []
    for e in events:
        if named:
            out.append(f"event: {e['type']}{nl}")
        out.append(f"data: {json.dumps(e)}{nl}{nl}")
    if done:
        out.append(f"data: [DONE]{nl}{nl}")
    return "".join(out).encode()


def watcher_view(body: bytes, head_cut: int = HEAD, tail_cut: int = TAIL) -> tuple[bytes, bool]:
    """What the body watcher hands over: the whole body, or head + b"\\n\\n" + tail."""
    if len(body) <= WHOLE_LIMIT:
        return body, True
    return body[:head_cut] + b"\n\n" + body[-tail_cut:], False


def parse(body: bytes, status: int = 200, ctype: str | None = JSON, **kw: Any) -> ParsedResponse:
    return parse_response(body, status_code=status, content_type=ctype, **kw)


# --- payload builders -----------------------------------------------------------------------

CHAT_MODEL = "gpt-4o-mini-2024-07-18"


def chat_completion(*, finish: str = "stop", refusal: str | None = None, n: int = 1) -> dict[str, Any]:
    return sdk(oc.ChatCompletion, {
        "id": "chatcmpl-AbC123", "object": "chat.completion", "created": 1_730_000_000, "model": CHAT_MODEL,
        "system_fingerprint": "fp_1", "service_tier": "default",
        "choices": [{"index": i, "finish_reason": finish, "logprobs": None,
                     "message": {"role": "assistant", "content": None if refusal else "Refund sent.",
                                 "refusal": refusal}} for i in range(n)],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280,
                  "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 100, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    })


def chat_chunk(*, content: str | None = None, finish: str | None = None, index: int = 0,
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
    choices = [] if usage else [{"index": index, "delta": {"content": content}, "finish_reason": finish,
                                 "logprobs": None}]
    return sdk(oc.ChatCompletionChunk, {
        "id": "chatcmpl-S1", "object": "chat.completion.chunk", "created": 1_730_000_000, "model": CHAT_MODEL,
        "system_fingerprint": "fp_1", "choices": choices, "usage": usage,
    })


CHUNK_USAGE = {"prompt_tokens": 50, "completion_tokens": 900, "total_tokens": 950,
               "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}


def chat_stream(n_deltas: int, *, usage: bool = True, text: str = "token ") -> bytes:
    events = [chat_chunk(content="")]
    events += [chat_chunk(content=text) for _ in range(n_deltas)]
    events.append(chat_chunk(finish="stop"))
    if usage:
        events.append(chat_chunk(usage=CHUNK_USAGE))
    return sse(events, done=True)


def response_obj(*, status: str = "completed", text: str = "Case summarised.", usage: bool = True,
                 incomplete: str | None = None, error: dict[str, Any] | None = None,
                 refusal: str | None = None) -> dict[str, Any]:
    content = ([{"type": "refusal", "refusal": refusal}] if refusal
               else [{"type": "output_text", "text": text, "annotations": []}])
    return sdk(orsp.Response, {
        "id": "resp_67ccd2bed1ec8190", "object": "response", "created_at": 1_741_476_542, "status": status,
        "model": "gpt-4o-mini-2024-07-18", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                    "content": content}] if status != "in_progress" else [],
        "usage": {"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 200},
                  "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 128},
                  "total_tokens": 2300} if usage else None,
    })


def responses_stream(n_deltas: int, *, terminal: str = "response.completed", **kw: Any) -> bytes:
    events: list[dict[str, Any]] = [sdk(orsp.ResponseCreatedEvent, {
        "type": "response.created", "sequence_number": 0,
        "response": response_obj(status="in_progress", usage=False)})]
    events += [sdk(orsp.ResponseTextDeltaEvent, {
        "type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_1", "output_index": 0,
        "content_index": 0, "delta": "word ", "logprobs": []}) for i in range(n_deltas)]
    final_type = {"response.completed": orsp.ResponseCompletedEvent,
                  "response.incomplete": orsp.ResponseIncompleteEvent,
                  "response.failed": orsp.ResponseFailedEvent}[terminal]
    status = {"response.completed": "completed", "response.incomplete": "incomplete",
              "response.failed": "failed"}[terminal]
    events.append(sdk(final_type, {"type": terminal, "sequence_number": n_deltas + 1,
                                   "response": response_obj(status=status, **kw)}))
    return sse(events, named=True)


ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
ANTHROPIC_USAGE = {"input_tokens": 30, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
                   "output_tokens": 1}


def anthropic_message(*, stop: str = "end_turn", stop_details: dict[str, Any] | None = None) -> dict[str, Any]:
    return sdk(at.Message, {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": "Your refund is on its way."}], "stop_reason": stop,
        "stop_sequence": None, "stop_details": stop_details,
        "usage": {**ANTHROPIC_USAGE, "output_tokens": 42,
                  "output_tokens_details": {"thinking_tokens": 12}},
    })


def anthropic_stream(n_deltas: int, *, stop: str = "end_turn", stop_details: dict[str, Any] | None = None,
                     final_usage: dict[str, Any] | None = None, end: bool = True) -> bytes:
    message = sdk(at.Message, {
        "id": "msg_01Stream", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": ANTHROPIC_USAGE})
    events = [sdk(at.RawMessageStartEvent, {"type": "message_start", "message": message}),
              sdk(at.RawContentBlockStartEvent, {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})]
    events += [sdk(at.RawContentBlockDeltaEvent, {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": "Hello "}})
               for _ in range(n_deltas)]
    events.append(sdk(at.RawContentBlockStopEvent, {"type": "content_block_stop", "index": 0}))
    events.append(sdk(at.RawMessageDeltaEvent, {
        "type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None, "stop_details": stop_details},
        "usage": final_usage or {"output_tokens": 15}}))
    if end:
        events.append(sdk(at.RawMessageStopEvent, {"type": "message_stop"}))
    body = sse(events, named=True)
    # Anthropic interleaves pings.
    return b"event: ping\ndata: {\"type\": \"ping\"}\n\n" + body


# --- request side ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "op"), [
    ("/v1/chat/completions", "chat"),
    ("/v1/responses", "chat"),
    ("/v1/messages", "chat"),
    ("/v1/completions", "text_completion"),
    ("/v1/embeddings", "embeddings"),
    ("/gateway/openai/v1/chat/completions", "chat"),
    ("/v1/chat/completions/", "chat"),
    ("/v1/chat/completions?api-version=1", "chat"),
    ("/v1/models", None),
    ("/v1/messages/count_tokens", None),
    ("/v1/files", None),
    ("/chat/completions", None),
    ("", None),
    ("/", None),
])
def test_operation_for_path(path: str, op: str | None) -> None:
    assert operation_for_path(path) == op


@pytest.mark.parametrize(("model", "path", "provider"), [
    ("openai/gpt-4o", "/v1/chat/completions", "openai"),
    ("Anthropic/claude-3-5-haiku-latest", "/v1/chat/completions", "anthropic"),
    ("claude-3-5-haiku-latest", "/v1/messages", "anthropic"),
    ("gpt-4o-mini", "/v1/responses", "openai"),
    (None, "/v1/embeddings", "openai"),
    (None, "/v1/models", None),
    ("/leading-slash", "/v1/files", None),
])
def test_provider_for(model: str | None, path: str, provider: str | None) -> None:
    assert provider_for(model, path) == provider


def test_request_model_from_sdk_shaped_bodies() -> None:
    assert request_model(b'{"model":"openai/gpt-4o-mini","messages":[]}') == "openai/gpt-4o-mini"
    assert request_model(b'{"messages": [], "model" : "a\\/b\\u00e9"}') == "a/b\u00e9"
    assert request_model(b'{"messages": []}') is None
    assert request_model(b'{"model": 4}') is None
    assert request_model(b'{"model": ""}') is None
    assert request_model(None) is None
    assert request_model(b"") is None
    assert request_model(b"\xff\xfe\x00 junk \"model\": \"\xff\"") is None
    # A nested "model" key (a tool call's input) does not win over the top-level one.
    nested = {"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "pick", "input": {"model": "inner"}}]}], "model": "outer"}
    assert request_model(json.dumps(nested).encode()) == "outer"
    assert request_model(json.dumps({"model": "outer", **nested, "model2": 1}).encode()) == "outer"


def test_request_model_does_not_parse_a_huge_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    # One regex pass: json.loads of a 5 MB prompt would cost milliseconds on every request.
    def no_json(_: bytes) -> Any:
        raise AssertionError("request_model decoded the whole body")

    monkeypatch.setattr(_requestbody, "_loads", no_json)
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 5_000_000}],
                       "model": "openai/gpt-4o-mini"}).encode()
    assert request_model(body) == "openai/gpt-4o-mini"
    # Escaped quotes inside the prompt are not keys.
    tricky = json.dumps({"messages": [{"role": "user", "content": '"model": "fake"'}], "model": "real"}).encode()
    assert request_model(tricky) == "real"


# --- OpenAI chat completions ------------------------------------------------------------------------


def test_openai_chat_json() -> None:
    r = parse(json.dumps(chat_completion()).encode())
    assert r == ParsedResponse(
        response_model=CHAT_MODEL, response_id="chatcmpl-AbC123", input_tokens=1200, output_tokens=80,
        cache_read_input_tokens=1024, cache_creation_input_tokens=100, reasoning_output_tokens=64,
        finish_reasons=("stop",))


def test_openai_chat_stream_with_usage_chunk() -> None:
    r = parse(chat_stream(20), ctype="text/event-stream; charset=utf-8")
    assert (r.response_model, r.response_id) == (CHAT_MODEL, "chatcmpl-S1")
    assert (r.input_tokens, r.output_tokens, r.cache_read_input_tokens) == (50, 900, 0)
    assert r.finish_reasons == ("stop",)
    assert r.complete
    assert r.policy is None


def test_openai_chat_stream_without_usage_and_with_two_choices() -> None:
    events = [chat_chunk(content="", index=0), chat_chunk(content="", index=1),
              chat_chunk(finish="length", index=1), chat_chunk(finish="stop", index=0)]
    r = parse(sse(events, done=True), ctype=SSE)
    assert r.input_tokens is None
    assert r.output_tokens is None
    assert r.finish_reasons == ("stop", "length")  # in choice order
    assert r.complete


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_long_stream_reads_what_ended_early_and_what_ends_it(separators: tuple[str, str]) -> None:
    # Only a stream's tail is scanned for every marker; what ends before it must still count:
    # a choice that finished 100 KB before the end (n=2), and usage sent mid-stream only.
    filler = [chat_chunk(content="token ", index=1) for _ in range(600)]
    events = [chat_chunk(content="", index=0), chat_chunk(content="", index=1),
              chat_chunk(finish="length", index=0), chat_chunk(usage=CHUNK_USAGE), *filler,
              chat_chunk(finish="stop", index=1)]
    body = "".join(f"data: {json.dumps(e, separators=separators)}\n\n" for e in events) + "data: [DONE]\n\n"
    assert len(body) > 100_000
    r = parse(body.encode(), ctype=SSE)
    assert r.finish_reasons == ("length", "stop")
    assert (r.input_tokens, r.output_tokens) == (50, 900)
    assert r.complete


def _early_finish_stream() -> bytes:
    filler = [chat_chunk(content="token ", index=1) for _ in range(600)]
    events = [chat_chunk(content="", index=0), chat_chunk(content="", index=1),
              chat_chunk(finish="length", index=0), *filler, chat_chunk(finish="stop", index=1)]
    return sse(events, done=True)


@pytest.mark.parametrize(
    ("request_body", "reasons"),
    [
        (None, ("length", "stop")),  # unknown request: the middle is searched
        (b'{"model": "gpt-4o-mini", "messages": [], "n": 2, "stream": true}', ("length", "stop")),
        (b'{"model":"gpt-3.5-turbo-instruct","prompt":"x","best_of":3,"n":2}', ("length", "stop")),
        (b'{"n" : 2, "messages": [], "model": "gpt-4o-mini"}', ("length", "stop")),
        # A string value "n" cannot be told from the key: searched too.
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "n"}]}', ("length", "stop")),
        # Bigger than the middle: looking for "n" would cost more than the search it saves.
        (b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * 300_000 + b'"}]}', ("length", "stop")),
        # One choice asked for: only the tail holds finish reasons, and only it is read.
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": true}', ("stop",)),
    ],
)
def test_long_stream_middle_is_searched_only_if_the_request_may_want_several_choices(
    request_body: bytes | None, reasons: tuple[str, ...]
) -> None:
    r = parse(_early_finish_stream(), ctype=SSE, request_body=request_body)
    assert r.finish_reasons == reasons
    assert r.complete


def test_long_stream_final_event_bigger_than_the_scanned_tail_is_read_whole() -> None:
    # The tail is widened to whole events: a final chunk carrying 20 KB of logprobs still counts.
    stop = chat_chunk(finish="length")
    stop["choices"][0]["logprobs"] = {"content": [{"token": "tok", "logprob": -0.5, "bytes": [116]}] * 400}
    events = [chat_chunk(content=""), *[chat_chunk(content="token ") for _ in range(600)], stop,
              chat_chunk(usage=CHUNK_USAGE)]
    body = sse(events, done=True)
    assert len(json.dumps(stop)) > 4 * _sse._TAIL_SCAN
    r = parse(body, ctype=SSE, request_body=b'{"model": "gpt-4o-mini", "messages": [], "stream": true}')
    assert r.finish_reasons == ("length",)
    assert (r.input_tokens, r.output_tokens) == (50, 900)
    assert r.complete


def test_long_stream_usage_is_the_last_one_sent() -> None:
    # Providers that send cumulative usage on every chunk: the last one counts, wherever it is.
    events = [chat_chunk(content="")]
    for i in range(1, 400):
        events.append(chat_chunk(usage={"prompt_tokens": 50, "completion_tokens": i, "total_tokens": 50 + i}))
    events += [chat_chunk(content="token ") for _ in range(200)]
    r = parse(sse(events, done=True), ctype=SSE)
    assert (r.input_tokens, r.output_tokens) == (50, 399)


def test_truncated_stream_is_incomplete_but_keeps_what_it_read() -> None:
    body = chat_stream(50)
    cut = body[: body.index(b'"finish_reason": "stop"')]
    r = parse(cut, ctype=SSE)
    assert not r.complete
    assert (r.response_model, r.response_id) == (CHAT_MODEL, "chatcmpl-S1")
    assert r.input_tokens is None
    # An Anthropic stream that lost its message_stop is incomplete too.
    r = parse(anthropic_stream(3, end=False), ctype=SSE)
    assert not r.complete
    assert r.output_tokens == 15


def test_legacy_completions_json() -> None:
    body = sdk(ot.Completion, {
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": "hi", "finish_reason": "length", "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
    r = parse(json.dumps(body).encode())
    assert (r.response_model, r.input_tokens, r.output_tokens, r.finish_reasons) == (
        "gpt-3.5-turbo-instruct", 5, 7, ("length",))
    assert r.complete


# --- OpenAI Responses --------------------------------------------------------------------------------


def test_responses_json() -> None:
    r = parse(json.dumps(response_obj()).encode())
    assert (r.response_model, r.response_id) == ("gpt-4o-mini-2024-07-18", "resp_67ccd2bed1ec8190")
    assert (r.input_tokens, r.output_tokens) == (2000, 300)
    assert (r.cache_read_input_tokens, r.reasoning_output_tokens) == (1500, 128)
    assert r.cache_creation_input_tokens == 200  # OpenAI counts it inside input_tokens: not added
    assert r.complete
    assert r.policy is None


def test_responses_stream_reads_the_completed_event() -> None:
    r = parse(responses_stream(30), ctype=SSE)
    assert r.response_id == "resp_67ccd2bed1ec8190"
    assert (r.input_tokens, r.output_tokens, r.cache_read_input_tokens, r.reasoning_output_tokens) == (
        2000, 300, 1500, 128)
    assert r.complete


def test_responses_stream_without_terminal_event_is_incomplete() -> None:
    body = responses_stream(5)
    cut = body[: body.index(b"event: response.completed")]
    r = parse(cut, ctype=SSE)
    assert not r.complete
    assert r.response_id == "resp_67ccd2bed1ec8190"
    assert r.input_tokens is None


def test_responses_incomplete_for_content_filter_is_a_policy_hit() -> None:
    r = parse(responses_stream(2, terminal="response.incomplete", incomplete="content_filter"), ctype=SSE)
    assert r.complete
    assert r.finish_reasons == ("content_filter",)
    assert r.policy == PolicyHit(reason="content_filter", code="content_filter", status=200)


def test_responses_failed_and_error_events() -> None:
    failed = responses_stream(2, terminal="response.failed", usage=False,
                              error={"code": "server_error", "message": "The model failed."})
    r = parse(failed, ctype=SSE)
    assert r.complete
    assert r.error_type == "server_error"
    assert r.policy is None
    assert r.response_id == "resp_67ccd2bed1ec8190"
    err = sdk(orsp.ResponseErrorEvent, {"type": "error", "code": "invalid_prompt", "sequence_number": 3,
                                        "message": "Invalid prompt: flagged as potentially violating our usage policy.",
                                        "param": None})
    r = parse(sse([err]), ctype=SSE)
    assert r.complete
    assert r.error_type == "invalid_prompt"
    assert r.policy is not None
    assert r.policy.code == "invalid_prompt"
    assert "usage policy" in r.policy.reason


def test_responses_refusal_output_is_a_policy_hit() -> None:
    r = parse(json.dumps(response_obj(refusal="I can't help with that.")).encode())
    assert r.policy == PolicyHit(reason="I can't help with that.", code="refusal", status=200)


# --- embeddings ---------------------------------------------------------------------------------


def embeddings(n: int, dims: int = 256) -> dict[str, Any]:
    return sdk(ot.CreateEmbeddingResponse, {
        "object": "list", "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": i, "embedding": [0.0123456789 * (j % 7 - 3) for j in range(dims)]}
                 for i in range(n)],
        "usage": {"prompt_tokens": 8 * n, "total_tokens": 8 * n}})


def test_embeddings_json() -> None:
    r = parse(json.dumps(embeddings(2)).encode())
    assert (r.response_model, r.input_tokens, r.output_tokens, r.response_id) == (
        "text-embedding-3-small", 16, None, None)
    assert r.complete


def test_large_embeddings_body_cut_by_the_watcher() -> None:
    body, whole = watcher_view(json.dumps(embeddings(400)).encode())
    assert not whole  # big enough to be cut: model and usage sit in the tail
    r = parse(body, whole=False)
    assert (r.response_model, r.input_tokens) == ("text-embedding-3-small", 3200)
    assert r.complete
    r = parse(body[:-40], whole=False)  # and the body really was cut short
    assert not r.complete


# --- Anthropic messages --------------------------------------------------------------------------


def test_anthropic_json_adds_cache_tokens_to_input() -> None:
    r = parse(json.dumps(anthropic_message()).encode())
    assert (r.response_model, r.response_id) == (ANTHROPIC_MODEL, "msg_01XFDUDYJgAACzvnptvVoYEL")
    assert r.input_tokens == 30 + 2000 + 500
    assert (r.cache_read_input_tokens, r.cache_creation_input_tokens) == (2000, 500)
    assert (r.output_tokens, r.reasoning_output_tokens) == (42, 12)
    assert r.finish_reasons == ("end_turn",)
    assert r.policy is None


def test_anthropic_stream() -> None:
    r = parse(anthropic_stream(10), ctype=SSE)
    assert (r.response_model, r.response_id) == (ANTHROPIC_MODEL, "msg_01Stream")
    assert r.input_tokens == 2530
    assert r.output_tokens == 15  # the last message_delta is cumulative: not 1 + 15
    assert r.finish_reasons == ("end_turn",)
    assert r.complete


def test_anthropic_stream_cumulative_delta_replaces_start_usage() -> None:
    final = {"input_tokens": 40, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": None,
             "output_tokens": 99}
    r = parse(anthropic_stream(1, final_usage=final), ctype=SSE)
    assert (r.input_tokens, r.output_tokens, r.cache_creation_input_tokens) == (40 + 2000 + 500, 99, 500)


def test_anthropic_refusal_stop_reason() -> None:
    details = {"type": "refusal", "category": "cyber", "explanation": "This looks like malware development."}
    r = parse(anthropic_stream(2, stop="refusal", stop_details=details), ctype=SSE)
    assert r.policy == PolicyHit(reason="This looks like malware development.", code="refusal", status=200)
    r = parse(json.dumps(anthropic_message(stop="refusal")).encode())
    assert r.policy == PolicyHit(reason="refusal", code="refusal", status=200)


# --- errors and policy -----------------------------------------------------------------------------


def openai_error(message: str, type_: str, code: str | None) -> bytes:
    err = sdk(ot.shared.ErrorObject, {"message": message, "type": type_, "param": None, "code": code})
    return json.dumps({"error": err}).encode()


def anthropic_error(type_: str, message: str) -> bytes:
    return json.dumps(sdk(at.ErrorResponse, {"type": "error", "error": {"type": type_, "message": message},
                                             "request_id": "req_011"})).encode()


def test_rate_limit_auth_and_server_errors_are_not_policy_hits() -> None:
    r = parse(openai_error("Rate limit reached for gpt-4o-mini on tokens per min (TPM).", "tokens",
                           "rate_limit_exceeded"), status=429)
    assert r.policy is None
    assert r.error_type == "tokens"
    assert r.complete
    r = parse(anthropic_error("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
              status=429)
    assert r.policy is None
    assert r.error_type == "rate_limit_error"
    r = parse(openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), status=401)
    assert r.policy is None
    assert r.error_type == "invalid_request_error"
    r = parse(anthropic_error("api_error", "Internal server error"), status=500)
    assert r.policy is None
    assert r.error_type == "api_error"
    # Quota and outages are not interceptions, even when the message says "policy" or "guardrail".
    budget = json.dumps({"error": {"type": "budget_exceeded", "message": "Spend limit reached per key policy"}})
    assert parse(budget.encode(), status=429).policy is None
    outage = json.dumps({"error": {"type": "api_error", "message": "Guardrail service unavailable"}})
    assert parse(outage.encode(), status=503).policy is None
    r = parse(b"<html>Bad Gateway</html>", status=502, ctype="text/html")
    assert r == ParsedResponse()


def test_403_and_451_are_policy_hits() -> None:
    r = parse(anthropic_error("permission_error", "Your API key does not have permission to use this model."),
              status=403)
    assert r.policy == PolicyHit(reason="Your API key does not have permission to use this model.",
                                 code="permission_error", status=403)
    r = parse(b"", status=451, ctype=None)
    assert r.policy == PolicyHit(reason="HTTP 451", code=None, status=451)


def test_policy_named_in_an_error_body() -> None:
    azure = openai_error("The response was filtered due to the prompt triggering Azure OpenAI's content "
                         "management policy. " + "x" * 400, "invalid_request_error", "content_filter")
    r = parse(azure, status=400)
    assert r.policy is not None
    assert (r.policy.code, r.policy.status) == ("content_filter", 400)
    assert r.policy.reason.startswith("The response was filtered")
    assert len(r.policy.reason) <= 200
    gateway = json.dumps({"error": {"type": "guardrail_violation", "message": "PII detected in prompt"}}).encode()
    r = parse(gateway, status=400)
    assert r.policy == PolicyHit(reason="PII detected in prompt", code="guardrail_violation", status=400)
    plain = openai_error("Invalid value for 'temperature'.", "invalid_request_error", None)
    assert parse(plain, status=400).policy is None


def test_content_filter_finish_reason_and_chat_refusal() -> None:
    r = parse(json.dumps(chat_completion(finish="content_filter")).encode())
    assert r.policy == PolicyHit(reason="content_filter", code="content_filter", status=200)
    r = parse(sse([chat_chunk(content="Hi"), chat_chunk(finish="content_filter")], done=True), ctype=SSE)
    assert r.policy is not None
    assert r.policy.code == "content_filter"
    r = parse(json.dumps(chat_completion(refusal="I'm sorry, I can't assist with that.")).encode())
    assert r.policy == PolicyHit(reason="I'm sorry, I can't assist with that.", code="refusal", status=200)


def test_anthropic_stream_error_event() -> None:
    overloaded = (b"event: error\n"
                  b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n')
    r = parse(anthropic_stream(2, end=False).split(b"event: message_delta")[0] + overloaded, ctype=SSE)
    assert r.error_type == "overloaded_error"
    assert r.policy is None
    assert r.complete
    assert r.input_tokens == 2530


# --- encodings -----------------------------------------------------------------------------------


def test_gzip_and_deflate_bodies() -> None:
    body = json.dumps(chat_completion()).encode()
    expected = parse(body)
    assert parse(gzip.compress(body), content_encoding="gzip") == expected
    assert parse(zlib.compress(body), content_encoding="deflate") == expected
    raw = zlib.compressobj(wbits=-15)
    assert parse(raw.compress(body) + raw.flush(), content_encoding="Deflate") == expected
    assert parse(gzip.compress(gzip.compress(body)), content_encoding="gzip, gzip") == expected
    stream = chat_stream(100)
    assert parse(gzip.compress(stream), ctype=SSE, content_encoding="gzip") == parse(stream, ctype=SSE)


def test_undecodable_encodings_give_up_quietly() -> None:
    body = json.dumps(chat_completion()).encode()
    assert parse(body, content_encoding="compress") == ParsedResponse()
    assert parse(b"not brotli", content_encoding="br") == ParsedResponse(complete=False)
    assert parse(b"not zstd", content_encoding="zstd") == ParsedResponse(complete=False)
    assert parse(b"not gzip at all", content_encoding="gzip").input_tokens is None


def _zstd_compress(data: bytes) -> bytes:
    try:
        from compression.zstd import compress  # Python 3.14
    except ImportError:
        from backports.zstd import compress
    return compress(data)


#: coding -> compress(bytes); zstd both as httpx2 (compression.zstd / backports.zstd) and httpx (zstandard) decode it.
CODECS = {
    "br": lambda data: __import__("brotli").compress(data, quality=4),
    "zstd": _zstd_compress,
}


@pytest.mark.parametrize("coding", sorted(CODECS))
def test_br_and_zstd_bodies(coding: str) -> None:
    # What httpx and httpx2 ask for once brotli / zstd support is installed (and on Python 3.14, zstd
    # always): a gateway behind a CDN then answers so, and the watcher sees the compressed bytes.
    compress = CODECS[coding]
    body = json.dumps(chat_completion()).encode()
    assert parse(compress(body), content_encoding=coding) == parse(body)
    stream = chat_stream(100)
    assert parse(compress(stream), ctype=SSE, content_encoding=coding) == parse(stream, ctype=SSE)
    assert parse(gzip.compress(compress(body)), content_encoding=f"{coding}, gzip") == parse(body)
    if coding == "zstd":  # several frames (a body compressed in pieces); brotli has no such thing
        assert parse(compress(body[:50]) + compress(body[50:]), content_encoding=coding) == parse(body)
    # Truncated, as a CDN sends a stream (flushed event by event): what decodes is read, and the
    # body is not complete.
    r = parse(flushed(coding, stream)[:-40], ctype=SSE, content_encoding=coding)
    assert r.response_id == "chatcmpl-S1"
    assert not r.complete


def test_zstd_through_zstandard_as_httpx_decodes_it() -> None:
    import zstandard

    from alephant_otel.record import _decode

    body = json.dumps(chat_completion()).encode()
    frames = zstandard.ZstdCompressor().compress(body[:70]) + zstandard.ZstdCompressor().compress(body[70:])
    decoded, whole = _decode._unzstd(lambda: _decode._Zstandard(zstandard), frames, True)
    assert (decoded, whole) == (body, True)
    decoded, whole = _decode._unzstd(lambda: _decode._Zstandard(zstandard), frames[:-9], True)
    assert body.startswith(decoded) and not whole


def flushed(coding: str, stream: bytes) -> bytes:
    """``stream`` compressed event by event, each flushed, as the emulator (and a CDN) sends it."""
    from alephant_otel.testing._emulator import _Encoder

    encoder = _Encoder(coding)
    return b"".join(encoder.part(event + b"\n\n") for event in stream.split(b"\n\n")[:-1]) + encoder.end()


@pytest.mark.parametrize("coding", sorted(CODECS))
def test_cut_br_and_zstd_streams_read_their_head(coding: str) -> None:
    # Distinct deltas: these codings squeeze a repeated one below the watcher's 1 MiB cut.
    rng = random.Random(0)
    deltas = [chat_chunk(content=f"{rng.getrandbits(64):x}") for _ in range(40_000)]
    stream = sse([chat_chunk(content=""), *deltas, chat_chunk(finish="stop"), chat_chunk(usage=CHUNK_USAGE)], done=True)
    assert parse(flushed(coding, stream), ctype=SSE, content_encoding=coding) == parse(stream, ctype=SSE)
    body, whole = watcher_view(flushed(coding, stream))
    assert not whole
    r = parse(body, ctype=SSE, content_encoding=coding, whole=False)
    assert (r.response_model, r.response_id) == (CHAT_MODEL, "chatcmpl-S1")
    assert r.complete  # unknown past the cut: not reported as truncated


@pytest.mark.parametrize("coding", sorted(CODECS))
def test_br_and_zstd_bombs_are_capped(coding: str) -> None:
    bomb = CODECS[coding](b'{"model": "x", "pad": "' + b" " * (64 << 20) + b'"}')
    assert len(bomb) < 1 << 20
    r = parse(bomb, content_encoding=coding)
    assert r.response_model == "x"
    assert not r.complete


def test_cut_gzip_stream_reads_its_head() -> None:
    stream = chat_stream(200_000, text="".join(chr(0x4E00 + i % 500) for i in range(8)))
    packed = gzip.compress(stream, compresslevel=1)
    body, whole = watcher_view(packed)
    assert not whole
    r = parse(body, ctype=SSE, content_encoding="gzip", whole=False)
    assert (r.response_model, r.response_id) == (CHAT_MODEL, "chatcmpl-S1")
    assert r.complete  # unknown past the cut: not reported as truncated
    # A whole body whose gzip stream stops early was truncated.
    r = parse(gzip.compress(chat_stream(10))[:-30], ctype=SSE, content_encoding="gzip")
    assert not r.complete
    assert r.response_id == "chatcmpl-S1"


def test_gzip_bomb_is_capped() -> None:
    bomb = gzip.compress(b'{"model": "x", "pad": "' + b" " * (64 << 20) + b'"}')
    assert len(bomb) < 1 << 20
    r = parse(bomb, content_encoding="gzip")
    assert r.response_model == "x"
    assert not r.complete


# --- cut streams -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 17, 101])
def test_head_tail_cut_openai_stream(shift: int) -> None:
    # Multi-byte text so that some cuts fall inside a UTF-8 character.
    stream = chat_stream(12_000, text="r\u00e9sum\u00e9 \u2603 ")
    body, whole = watcher_view(stream, HEAD + shift, TAIL + shift)
    assert not whole
    r = parse(body, ctype=SSE, whole=False)
    assert (r.response_model, r.response_id) == (CHAT_MODEL, "chatcmpl-S1")
    assert (r.input_tokens, r.output_tokens) == (50, 900)
    assert r.finish_reasons == ("stop",)
    assert r.complete


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_head_tail_cut_anthropic_stream_any_line_ending(nl: str) -> None:
    stream = anthropic_stream(12_000).replace(b"\n", nl.encode())
    body, whole = watcher_view(stream)
    assert not whole
    r = parse(body, ctype=SSE, whole=False)
    assert (r.response_id, r.input_tokens, r.output_tokens, r.finish_reasons, r.complete) == (
        "msg_01Stream", 2530, 15, ("end_turn",), True)


def test_event_cut_by_the_gap_still_yields_its_usage() -> None:
    # A Responses stream whose final event is longer than the tail: only its end is kept.
    stream = responses_stream(10, text="long answer " * 40_000)
    completed = stream.rindex(b"data: ")
    body = stream[:HEAD] + b"\n\n" + stream[completed + 1000:]
    r = parse(body, ctype=SSE, whole=False)
    assert r.response_id == "resp_67ccd2bed1ec8190"
    assert (r.input_tokens, r.output_tokens, r.cache_read_input_tokens) == (2000, 300, 1500)


def test_sse_comments_event_lines_and_multiline_data() -> None:
    chunk = json.dumps(chat_chunk(finish="stop"))
    usage = json.dumps(chat_chunk(usage=CHUNK_USAGE), indent=1).replace("\n", "\ndata: ")
    body = f": ping\n\nevent: chunk\nid: 1\nretry: 10\ndata:{chunk}\n\n: keep-alive\ndata: {usage}\n\ndata: [DONE]"
    r = parse(body.encode(), ctype=SSE)
    assert (r.input_tokens, r.output_tokens, r.finish_reasons, r.complete) == (50, 900, ("stop",), True)


def test_mislabelled_content_types_are_sniffed() -> None:
    assert parse(chat_stream(3), ctype="text/plain").output_tokens == 900
    assert parse(chat_stream(3), ctype=None).output_tokens == 900
    assert parse(json.dumps(chat_completion()).encode(), ctype=None).output_tokens == 80
    assert parse(json.dumps(chat_completion()).encode(), ctype="text/plain").output_tokens == 80


# --- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b"[1, 2]", b"42", b'"str"', b"{", b"{}", b"\x00\xff\xfe" * 100,
    b"[" * 100_000 + b"]" * 100_000, b'{"usage": ' * 50_000,
    b'{"usage": {"prompt_tokens": 1' + b"0" * 5000 + b"}}",
])
def test_junk_never_raises(body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="alephant_otel.record._usage"):
        for ctype in (JSON, SSE, None):
            for status in (200, 400, 500):
                r = parse(body, status=status, ctype=ctype)
                assert r.input_tokens is None
    assert not caplog.records  # nothing reached the internal-error guard


@pytest.mark.parametrize("value", [-1, 1.5, 1e400, True, "12", None, [3], {"n": 1}, 2**80])
def test_bad_token_counts_are_dropped(value: Any) -> None:
    usage = {"prompt_tokens": value, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": value}}
    body = json.dumps({"id": "x", "model": "m", "usage": usage}, default=str).replace("Infinity", "1e400")
    r = parse(body.encode())
    assert (r.input_tokens, r.cache_read_input_tokens, r.output_tokens) == (None, None, 7)


def test_invalid_utf8_in_a_json_body_is_salvaged() -> None:
    body = json.dumps(chat_completion()).encode().replace(b"Refund sent.", b"Refund \xff\xfe sent.")
    r = parse(body)
    assert (r.response_model, r.input_tokens, r.output_tokens, r.finish_reasons) == (
        CHAT_MODEL, 1200, 80, ("stop",))


@pytest.mark.parametrize("n_deltas", [600, 6_000, 60_000])
def test_a_long_stream_decodes_a_few_events_not_every_chunk(n_deltas: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The middle of a stream is scanned by regex; only events that can carry ids, usage or an end are decoded,
    # so the JSON work per stream is constant whatever its length (benchmarks/ has the timings).
    decoded: list[bytes] = []
    loads = _acc._loads

    def counting(payload: bytes) -> Any:
        decoded.append(payload)
        return loads(payload)

    monkeypatch.setattr(_sse, "_loads", counting)
    body = chat_stream(n_deltas, text="lorem ipsum dolor sit amet ")
    if len(body) > WHOLE_LIMIT:  # what the watcher keeps of a long body: its head and tail
        body = body[-WHOLE_LIMIT:]
        body = body[body.index(b"\n\n") + 2 :]  # start on an event boundary
    result = parse(body, ctype=SSE)
    assert result.output_tokens == CHUNK_USAGE["completion_tokens"]
    assert len(decoded) <= 3, [d[:80] for d in decoded]


# --- properties ------------------------------------------------------------------------------------


def check(r: ParsedResponse) -> None:
    assert isinstance(r, ParsedResponse)
    for n in (r.input_tokens, r.output_tokens, r.cache_read_input_tokens, r.cache_creation_input_tokens,
              r.reasoning_output_tokens):
        assert n is None or (type(n) is int and n >= 0)
    assert isinstance(r.finish_reasons, tuple)
    assert all(isinstance(f, str) for f in r.finish_reasons)
    assert r.policy is None or (isinstance(r.policy, PolicyHit) and isinstance(r.policy.reason, str))
    assert r.response_model is None or isinstance(r.response_model, str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["usage", "content_filter", "refusal", "message_start", "response.completed", "error"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["model", "id", "usage", "choices", "type", "error", "message", "delta", "response",
                         "prompt_tokens", "input_tokens", "output_tokens", "completion_tokens", "finish_reason",
                         "stop_reason", "cached_tokens", "prompt_tokens_details", "object", "code", "index",
                         "cache_read_input_tokens", "incomplete_details", "output", "content"]) | st.text(max_size=8),
        children, max_size=6),
    max_leaves=30,
)
sse_lines = st.lists(
    st.one_of(
        st.builds(lambda v: "data: " + json.dumps(v), json_values),
        st.sampled_from(["", "data: [DONE]", ": ping", "event: message_delta", "data:", "id: 3", "retry: x",
                         'data: {"type": "message_delta", "usage": {"output_tokens": -3}}']),
        st.text(max_size=40),
    ),
    max_size=25,
).map("\n".join)
params = st.fixed_dictionaries({
    "status_code": st.sampled_from([200, 400, 403, 429, 451, 500]),
    "content_type": st.sampled_from([JSON, SSE, None, "text/plain", "application/problem+json"]),
    "content_encoding": st.sampled_from([None, "", "gzip", "deflate", "br", "identity", "bogus"]),
    "whole": st.booleans(),
})


def run_property(examples: int, strategy: Any, caplog: pytest.LogCaptureFixture) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy, params)
    def prop(body: bytes, kw: dict[str, Any]) -> None:
        check(parse_response(body, **kw))
        request_model(body)

    with caplog.at_level(logging.DEBUG, logger="alephant_otel.record._usage"):
        prop()
    # Only ours: this runs for minutes, and a thread left by an earlier test may log meanwhile.
    # (An impossible token count in the generated JSON is rightly dropped with a warning.)
    assert not [r for r in caplog.records if r.name.startswith("alephant_otel") and "impossible" not in r.msg]


examples = pytest.mark.parametrize(
    "n", [EXAMPLES, pytest.param(SLOW_EXAMPLES, marks=pytest.mark.slow)], ids=["fast", "slow"])


@examples
def test_arbitrary_bytes_never_raise(n: int, caplog: pytest.LogCaptureFixture) -> None:
    run_property(n, st.binary(max_size=2000), caplog)


@examples
def test_arbitrary_json_never_raises(n: int, caplog: pytest.LogCaptureFixture) -> None:
    run_property(n, json_values.map(lambda v: json.dumps(v).encode()), caplog)


@examples
def test_arbitrary_sse_never_raises(n: int, caplog: pytest.LogCaptureFixture) -> None:
    crlf = st.sampled_from(["\n", "\r\n", "\r"])
    run_property(n, st.tuples(sse_lines, crlf).map(lambda t: t[0].replace("\n", t[1]).encode()), caplog)


@examples
def test_arbitrary_cuts_of_real_streams_never_raise(n: int, caplog: pytest.LogCaptureFixture) -> None:
    streams = [chat_stream(30), anthropic_stream(30), responses_stream(30),
               json.dumps(chat_completion()).encode(), json.dumps(embeddings(3)).encode()]
    cuts = st.tuples(st.sampled_from(streams), st.integers(0, 3000), st.integers(0, 3000)).map(
        lambda t: t[0][: t[1]] + b"\n\n" + t[0][len(t[0]) - t[2]:])
    run_property(n, cuts, caplog)


# -- the plain chat completion, read without the fold ----------------------------------------

_counts = st.integers(min_value=0, max_value=2000)
_bad_counts = st.sampled_from([None, -1, 10**9 + 1, True, 2.5, "7"])
_texts = st.sampled_from(["gpt-4o-mini", " x ", "", "  ", "a" * 300, None, 5])


def _at(doc: dict[str, Any], path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


#: (where, what): the changes a plain completion is put through, one to three at a time.
_CHANGES: list[tuple[tuple[Any, ...], Any]] = [
    *[(("usage",), k) for k in ("prompt_tokens", "completion_tokens")],
    (("usage", "prompt_tokens_details"), "cached_tokens"),
    (("usage", "prompt_tokens_details"), "cache_write_tokens"),
    (("usage", "completion_tokens_details"), "reasoning_tokens"),
    (("choices", 0), "finish_reason"),
    (("choices", 0), "index"),
    (("choices", 0, "message"), "refusal"),
    (("choices", 0), "message"),
    (("usage",), "prompt_tokens_details"),
    (("usage",), "completion_tokens_details"),
    ((), "object"), ((), "type"), ((), "error"), ((), "choices"), ((), "usage"), ((), "model"), ((), "id"),
]
_VALUES: dict[str, Any] = {
    "prompt_tokens": _bad_counts, "completion_tokens": _bad_counts, "cached_tokens": _bad_counts,
    "cache_write_tokens": st.one_of(_counts, _bad_counts), "reasoning_tokens": _bad_counts,
    "finish_reason": st.sampled_from([" length ", "content_filter", "refusal", "", " ", None, 3, "x" * 80]),
    "index": st.sampled_from([1, None, "0"]),
    "refusal": st.sampled_from(["I can't help with that", "", " ", 4]),
    "message": st.sampled_from([None, "text", []]),
    "prompt_tokens_details": st.sampled_from([None, 3, "x", {}]),
    "completion_tokens_details": st.sampled_from([None, [], {}]),
    "object": st.sampled_from(["response", "text_completion", None]),
    "type": st.sampled_from(["message", "message_stop", "message_delta", "error", "response.completed", None, 1]),
    "error": st.sampled_from([{"message": "no"}, None, "x"]),
    "choices": st.sampled_from([[], "x", ["x"], "two"]),
    "usage": st.sampled_from([None, [], {}]),
    "model": _texts, "id": _texts,
}


@st.composite
def chat_completions(draw: st.DrawFn) -> dict[str, Any]:
    """A plain chat completion, then none to three of its fields changed, removed or made odd."""
    doc: dict[str, Any] = {
        "id": draw(_texts), "object": "chat.completion", "model": draw(_texts),
        "choices": [{"index": 0, "finish_reason": draw(st.sampled_from(["stop", "length", "tool_calls"])),
                     "message": {"role": "assistant", "content": "hi", "refusal": None}}],
        "usage": {"prompt_tokens": draw(_counts), "completion_tokens": draw(_counts),
                  "prompt_tokens_details": {"cached_tokens": draw(_counts)},
                  "completion_tokens_details": {"reasoning_tokens": draw(_counts)}},
    }
    for where, key in draw(st.lists(st.sampled_from(_CHANGES), max_size=3)):
        try:
            parent = _at(doc, where)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change took the parent away
        if not isinstance(parent, dict):
            continue
        if draw(st.integers(0, 3)) == 0:
            parent.pop(key, None)
            continue
        value = draw(_VALUES[key])
        if value == "two" and key == "choices":
            now = doc.get("choices")
            first = now[0] if isinstance(now, list) and now else None
            value = [*now, dict(first, index=1)] if isinstance(first, dict) else []
        parent[key] = value
    return doc


def test_plain_chat_completions_read_directly_equal_the_fold() -> None:
    from alephant_otel.record import _usage

    direct: list[ParsedResponse] = []

    @settings(max_examples=5 * EXAMPLES, deadline=None, database=None)
    @given(chat_completions(), st.sampled_from([200, 201, 399]))
    def prop(doc: dict[str, Any], status: int) -> None:
        body = json.dumps(doc).encode()
        folded = _acc._Acc()
        folded.obj(json.loads(body))
        expected = folded.result(status, True)
        assert parse_response(body, status_code=status, content_type=JSON) == expected
        plain = _usage._plain_chat(json.loads(body))
        if plain is not None:
            assert plain == expected
            direct.append(plain)

    prop()
    assert len(direct) > EXAMPLES // 20  # the fast path was taken, and often


def test_the_fast_path_takes_the_plain_chat_completion() -> None:
    # The fast path must stay reachable: a plain OpenAI completion is read without the fold.
    from alephant_otel.record import _usage

    body = oc.ChatCompletion(
        id="chatcmpl-1", object="chat.completion", created=1, model="gpt-4o-mini",
        choices=[oc.chat_completion.Choice(index=0, finish_reason="stop", logprobs=None,
                                           message=oc.ChatCompletionMessage(role="assistant", content="hi"))],
        usage=ot.CompletionUsage(prompt_tokens=12, completion_tokens=3, total_tokens=15,
                                 prompt_tokens_details={"cached_tokens": 4}),
    ).model_dump_json().encode()
    direct = _usage._plain_chat(json.loads(body))
    assert direct == ParsedResponse("gpt-4o-mini", "chatcmpl-1", 12, 3, 4, None, None, ("stop",), complete=True)
    assert parse_response(body, status_code=200, content_type=JSON) == direct
