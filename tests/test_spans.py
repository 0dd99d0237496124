"""Request-level spans: usage, cost, retries, policy events and roll-ups, from real SDK traffic."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from alephant_otel import run, session
from alephant_otel.record import _sse, _usage
from alephant_otel.testing import Fault, GatewayEmulator

MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Where is my refund for order 1234?"}]


def by_kind(spans: InMemorySpanExporter, kind: str):
    return [s for s in spans.get_finished_spans() if (s.attributes or {}).get("alephant.span.kind") == kind]


def expected_cost(model: str, provider: str, inp: int, out: int, cache_read: int = 0) -> float:
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read or None)
    return float(calc_price(usage, model, provider_id=provider).total_price)


def test_openai_chat_non_streaming(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-secret-value", max_retries=0)
    with client, session("sess_s1", path="/support"), run("run_s1", agent_id="triage"):
        resp = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert req.name == f"chat {MODEL}"
    assert a["alephant.session.id"] == a["gen_ai.conversation.id"] == "sess_s1"
    assert a["alephant.run.id"] == "run_s1" and a["gen_ai.agent.id"] == "triage"
    assert a["alephant.request.id"] == gateway.requests[0].headers["x-request-id"]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.response.model"] == resp.model
    assert a["gen_ai.response.id"] == resp.id
    assert a["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens > 0
    cached = resp.usage.prompt_tokens_details.cached_tokens if resp.usage.prompt_tokens_details else 0
    assert a["alephant.cost.source"] == "price_table"
    assert a["alephant.cost.usd"] == pytest.approx(
        expected_cost("gpt-4o-mini", "openai", resp.usage.prompt_tokens, resp.usage.completion_tokens, cached))


def test_openai_chat_streaming_usage_from_the_stream(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_s2"), run("run_s2", agent_id="writer"):
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert a["alephant.streaming"] is True
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert a["gen_ai.response.id"] == chunks[0].id
    assert "alephant.response.incomplete" not in a
    # The span ends with the body, not when headers arrive.
    assert req.end_time >= req.start_time


def test_openai_chat_stream_of_several_choices_keeps_every_finish_reason(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    # The emulator's first choice ends far before the stream does: its finish reason is not in
    # the tail the parse reads whole, so only the request's "n" makes the middle be searched.
    raw = httpx.post(gateway.url + "/v1/chat/completions",
                     json={"model": MODEL, "messages": MESSAGES, "n": 3, "stream": True}).content
    assert len(raw) - raw.index(b'"finish_reason": "stop"') > 4 * _sse._TAIL_SCAN
    spans.clear()
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_n3"):
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, n=3, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    finished = {c.index: c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason}
    assert finished == {0: "stop", 1: "stop", 2: "stop"}
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert a["gen_ai.response.finish_reasons"] == ("stop", "stop", "stop")
    assert a["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert a["gen_ai.usage.output_tokens"] == gateway.expected_usage({"messages": MESSAGES, "n": 3})[1]
    assert "alephant.response.incomplete" not in a


async def test_openai_async_responses_and_embeddings(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    async with client:
        with session("sess_s3"), run("run_s3", agent_id="a"):
            r = await client.responses.create(model=MODEL, input="Summarise the case")
            e = await client.embeddings.create(model="openai/text-embedding-3-small", input="hello world")
            stream = await client.responses.create(model=MODEL, input="Stream it", stream=True)
            final = None
            async for event in stream:
                if event.type == "response.completed":
                    final = event.response
    reqs = sorted(by_kind(spans, "request"), key=lambda s: s.start_time)
    assert [s.attributes["gen_ai.operation.name"] for s in reqs] == ["chat", "embeddings", "chat"]
    assert reqs[0].attributes["gen_ai.usage.input_tokens"] == r.usage.input_tokens
    assert reqs[0].attributes["gen_ai.usage.output_tokens"] == r.usage.output_tokens
    assert reqs[1].attributes["gen_ai.usage.input_tokens"] == e.usage.prompt_tokens
    assert final is not None
    assert reqs[2].attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens


def test_openai_stream_helpers(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    """The SDK's ``.stream()`` helpers, which check the event order and build the final object."""
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-x", max_retries=0)
    with client, session("sess_helpers"), run("run_helpers", agent_id="a"):
        with client.responses.stream(model=MODEL, input="Stream the summary") as rs:
            deltas = [e.delta for e in rs if e.type == "response.output_text.delta"]
            final = rs.get_final_response()
        with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as cs:
            for _ in cs:
                pass
            completion = cs.get_final_completion()
    assert "".join(deltas) == final.output_text
    assert final.usage is not None
    responses_req, chat_req = sorted(by_kind(spans, "request"), key=lambda s: s.start_time)
    a = responses_req.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        final.usage.input_tokens, final.usage.output_tokens)
    assert a["gen_ai.response.id"] == final.id
    assert "alephant.response.incomplete" not in a
    # Without stream_options.include_usage the API sends no usage, so the span has none: not guessed.
    b = chat_req.attributes
    assert b["gen_ai.response.id"] == completion.id
    assert b["gen_ai.response.finish_reasons"] == ("stop",)
    assert "gen_ai.usage.output_tokens" not in b
    assert "alephant.response.incomplete" not in b


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_messages(stream: bool, gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-secret", max_retries=0)
    model = "anthropic/claude-3-5-haiku-latest"
    with client, session("sess_s4"), run("run_s4", agent_id="critic"):
        if stream:
            with client.messages.stream(model=model, max_tokens=100, messages=MESSAGES) as s:
                for _ in s:
                    pass
                msg = s.get_final_message()
        else:
            msg = client.messages.create(model=model, max_tokens=100, messages=MESSAGES)
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.usage.input_tokens"] == msg.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == msg.usage.output_tokens
    assert a["gen_ai.response.id"] == msg.id
    assert a["alephant.cost.usd"] == pytest.approx(
        expected_cost("claude-3-5-haiku-latest", "anthropic", msg.usage.input_tokens, msg.usage.output_tokens,
                      msg.usage.cache_read_input_tokens or 0))


@pytest.mark.parametrize("stream", [False, True])
def test_openai_legacy_completions(stream: bool, gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    model = "openai/gpt-3.5-turbo-instruct"
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_lc"), run("run_lc", agent_id="legacy"):
        if stream:
            chunks = list(client.completions.create(model=model, prompt="Where is my refund?", n=2, stream=True,
                                                    stream_options={"include_usage": True}))
            usage, rid = chunks[-1].usage, chunks[0].id
        else:
            resp = client.completions.create(model=model, prompt="Where is my refund?", n=2)
            usage, rid = resp.usage, resp.id
    assert usage is not None and usage.completion_tokens > 0
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert req.name == f"text_completion {model}"
    assert a["gen_ai.operation.name"] == "text_completion"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["alephant.session.id"] == "sess_lc" and a["alephant.run.id"] == "run_lc"
    assert a["gen_ai.response.id"] == rid
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert a["gen_ai.response.finish_reasons"] == ("stop", "stop")
    assert a["alephant.cost.usd"] == pytest.approx(
        expected_cost("gpt-3.5-turbo-instruct", "openai", usage.prompt_tokens, usage.completion_tokens))
    assert a.get("alephant.streaming", False) is stream
    assert "alephant.response.incomplete" not in a


def test_a_token_count_is_a_gateway_request_that_spends_nothing(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    # count_tokens answers {"input_tokens": n}: a count of what a call would use, not usage.
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-x", max_retries=0)
    with client, session("sess_ct"), run("run_ct"):
        count = client.messages.count_tokens(model="claude-3-5-haiku-latest", messages=MESSAGES)
        msg = client.messages.create(model="claude-3-5-haiku-latest", max_tokens=100, messages=MESSAGES)
    assert count.input_tokens == msg.usage.input_tokens > 0
    (sent, _) = gateway.requests
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.headers["alephant-session-id"] == "sess_ct" and sent.headers["alephant-run-id"] == "run_ct"
    counted, called = sorted(by_kind(spans, "request"), key=lambda s: s.start_time)
    a = counted.attributes
    assert a["alephant.session.id"] == "sess_ct"
    assert a["gen_ai.request.model"] == "claude-3-5-haiku-latest"
    assert not {k for k in a if k.startswith("gen_ai.usage.") or k.startswith("alephant.cost.")}
    assert "gen_ai.operation.name" not in a
    assert called.attributes["gen_ai.operation.name"] == "chat"
    (sess,) = by_kind(spans, "session")
    assert sess.attributes["alephant.total.requests"] == 2
    assert sess.attributes["alephant.total.input_tokens"] == msg.usage.input_tokens
    assert sess.attributes["alephant.total.cost.usd"] == pytest.approx(called.attributes["alephant.cost.usd"])


@pytest.mark.parametrize("stream", [False, True])
def test_a_retrieved_response_is_not_counted_or_priced_again(
    stream: bool, gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_get"):
        if stream:
            (made,) = [e.response for e in client.responses.create(model=MODEL, input="Where is my refund?",
                                                                    stream=True) if e.type == "response.completed"]
        else:
            made = client.responses.create(model=MODEL, input="Where is my refund?")
        again = client.responses.retrieve(made.id)
    # The body of the retrieval carries the same usage: the API answers with the whole Response.
    assert again.id == made.id and again.usage is not None and again.usage.input_tokens == made.usage.input_tokens
    assert [r.method for r in gateway.requests] == ["POST", "GET"]
    call, fetch = sorted(by_kind(spans, "request"), key=lambda s: s.start_time)
    assert call.attributes["gen_ai.usage.input_tokens"] == made.usage.input_tokens
    assert "alephant.cost.usd" in call.attributes
    assert fetch.attributes["alephant.session.id"] == "sess_get"
    assert fetch.attributes["gen_ai.response.id"] == made.id
    assert not {k for k in fetch.attributes if k.startswith(("gen_ai.usage.", "alephant.cost."))}
    (sess,) = by_kind(spans, "session")
    assert sess.attributes["alephant.total.requests"] == 2
    assert sess.attributes["alephant.total.input_tokens"] == made.usage.input_tokens
    assert sess.attributes["alephant.total.cost.usd"] == pytest.approx(call.attributes["alephant.cost.usd"])


def test_a_background_response_counts_once_when_fetched_done(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    # Background mode: the POST answers "queued" with no usage; the usage comes with the fetch
    # that finds it done, the only place it ever appears. A later fetch repeats it.
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_bg"):
        queued = client.responses.create(model=MODEL, input="Where is my refund?", background=True)
        done = client.responses.retrieve(queued.id)
        client.responses.retrieve(queued.id)
    assert queued.status == "queued" and queued.usage is None
    assert done.status == "completed" and done.usage is not None
    post, first, second = sorted(by_kind(spans, "request"), key=lambda s: s.start_time)
    assert "gen_ai.usage.input_tokens" not in post.attributes
    assert first.attributes["gen_ai.usage.input_tokens"] == done.usage.input_tokens
    assert first.attributes["gen_ai.usage.output_tokens"] == done.usage.output_tokens
    assert first.attributes["alephant.cost.usd"] == pytest.approx(
        expected_cost("gpt-4o-mini", "openai", done.usage.input_tokens, done.usage.output_tokens))
    assert not {k for k in second.attributes if k.startswith(("gen_ai.usage.", "alephant.cost."))}
    (sess,) = by_kind(spans, "session")
    assert sess.attributes["alephant.total.input_tokens"] == done.usage.input_tokens
    assert sess.attributes["alephant.total.cost.usd"] == pytest.approx(first.attributes["alephant.cost.usd"])


def test_rollups_equal_sums_of_requests(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_r"):
        with run("run_a", agent_id="a"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            with run("run_b", agent_id="b"):
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x " * 50}])
        client.embeddings.create(model="openai/text-embedding-3-small", input="loose request")
    reqs = by_kind(spans, "request")
    (sess,) = by_kind(spans, "session")
    runs = {s.attributes["alephant.run.id"]: s for s in by_kind(spans, "run")}
    assert runs["run_a"].name == "invoke_agent a"
    assert runs["run_b"].attributes["alephant.run.parent_id"] == "run_a"

    def total(scope_reqs, key):
        return sum(r.attributes.get(key, 0) for r in scope_reqs)

    for scope, members in (
        (sess, reqs),
        (runs["run_a"], [r for r in reqs if r.attributes.get("alephant.run.id") in ("run_a", "run_b")]),
        (runs["run_b"], [r for r in reqs if r.attributes.get("alephant.run.id") == "run_b"]),
    ):
        a = scope.attributes
        assert a["alephant.total.requests"] == len(members)
        assert a["alephant.total.input_tokens"] == total(members, "gen_ai.usage.input_tokens")
        assert a["alephant.total.output_tokens"] == total(members, "gen_ai.usage.output_tokens")
        assert a["alephant.total.cost.usd"] == pytest.approx(total(members, "alephant.cost.usd"))
        # Roll-ups never reuse per-request names that backends sum.
        assert not any(k.startswith("gen_ai.usage.") or k == "alephant.cost.usd" for k in a)
    # Request spans are children of the innermost run span.
    inner = next(r for r in reqs if r.attributes.get("alephant.run.id") == "run_b")
    assert inner.parent is not None


def test_gateway_reported_cost_wins(spans: InMemorySpanExporter, tracer_provider) -> None:
    import alephant_otel

    with GatewayEmulator(report_cost=True) as gw:
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
        with httpx.Client() as client, session("sess_cost"):
            r = client.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    (req,) = by_kind(spans, "request")
    assert req.attributes["alephant.cost.source"] == "gateway"
    assert req.attributes["alephant.cost.usd"] == pytest.approx(float(r.headers["x-litellm-response-cost"]))


def test_retry_then_success(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    gateway.add_fault(Fault.status(429, retry_after=0.01), times=1)
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=2)
    with client, session("sess_retry"), run("run_retry", agent_id="r"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    reqs = sorted(by_kind(spans, "request"), key=lambda s: s.start_time)
    assert len(reqs) == 2
    first = reqs[0].attributes
    assert first.get("http.response.status_code", first.get("http.status_code")) == 429
    assert "alephant.retry.attempt" not in reqs[0].attributes
    assert reqs[1].attributes["alephant.retry.attempt"] == 1
    assert reqs[0].attributes["alephant.request.id"] != reqs[1].attributes["alephant.request.id"]
    (run_span,) = by_kind(spans, "run")
    assert run_span.attributes["alephant.total.requests"] == 2
    assert run_span.attributes["alephant.total.retries"] == 1


def test_policy_interception(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    gateway.add_fault(Fault.policy("PII detected in prompt", code="pii_guardrail"))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_pol"), run("run_pol", agent_id="p"), pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    (req,) = by_kind(spans, "request")
    assert req.attributes["alephant.intercepted"] is True
    assert req.status.status_code is StatusCode.ERROR
    (event,) = [e for e in req.events if e.name == "alephant.policy"]
    assert "PII" in event.attributes["alephant.policy.reason"]
    assert event.attributes["alephant.policy.status"] == 403
    (sess,) = by_kind(spans, "session")
    assert sess.attributes["alephant.total.intercepted"] == 1


def test_secrets_never_reach_spans(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    secret = "sk-very-secret-key-0123456789"
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=secret, max_retries=0)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=secret + "-ant", max_retries=0)
    with client, ant, session("sess_sec"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        ant.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=10, messages=MESSAGES)
        with httpx.Client() as h:
            h.post(gateway.url + "/v1/embeddings?api_key=" + secret, json={"model": "m", "input": "x"})
    assert gateway.requests[0].headers["authorization"] == f"Bearer {secret}"
    dumped = "".join(s.to_json() for s in spans.get_finished_spans())
    assert secret not in dumped


def test_non_gateway_requests_are_not_enriched(
    gateway: GatewayEmulator, other_server: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    with httpx.Client() as client, session("sess_other"):
        client.post(other_server.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    (http_span,) = spans.get_finished_spans()[:1]
    assert http_span.attributes["alephant.session.id"] == "sess_other"  # ids stamped on every span
    assert "alephant.request.id" not in http_span.attributes
    assert "gen_ai.usage.input_tokens" not in http_span.attributes
    assert json.loads(other_server.requests[0].body)["model"] == MODEL


@pytest.mark.parametrize("lib", ["httpx", "httpx2"])
def test_stream_dropped_unread_and_unclosed_still_ends_its_span(
    lib: str, gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    import gc

    mod = pytest.importorskip(lib)
    client = mod.Client()
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    with session("sess_dropped"):
        response = client.send(client.build_request("POST", gateway.url + "/v1/chat/completions", json=body),
                               stream=True)
        assert response.status_code == 200
    assert by_kind(spans, "request") == []  # still open: the body has not ended
    del response
    gc.collect()
    (req,) = by_kind(spans, "request")
    assert req.attributes["alephant.session.id"] == "sess_dropped"
    assert req.attributes["alephant.response.incomplete"] is True
    client.close()


@pytest.mark.parametrize("api", ["anthropic", "responses"])
def test_error_event_in_a_200_stream_fails_the_span(api: str, gateway: GatewayEmulator,
                                                     spans: InMemorySpanExporter) -> None:
    # Anthropic's mid-stream overloaded_error and a Responses "error" event arrive with HTTP 200.
    gateway.add_fault(Fault.stream_error(2, error_type="overloaded_error", message="Overloaded"))
    with session("sess_stream_error"):
        if api == "anthropic":
            client = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)
            with client, pytest.raises(anthropic.APIStatusError, match="Overloaded"), client.messages.stream(
                    model="anthropic/claude-3-5-haiku-latest", max_tokens=50, messages=MESSAGES) as s:
                for _ in s:
                    pass
        else:
            with openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0) as oc:
                kinds = [e.type for e in oc.responses.create(model=MODEL, input="hi", stream=True)]
            assert kinds[-1] == "error"  # the SDK hands this one to the caller instead of raising
    (req,) = by_kind(spans, "request")
    assert req.status.status_code is StatusCode.ERROR
    assert "overloaded_error" in (req.status.description or "")
    assert req.attributes["error.type"] == "overloaded_error"
    assert req.attributes["alephant.streaming"] is True
    assert "alephant.intercepted" not in req.attributes


@pytest.mark.parametrize("how", ["break and close", "context manager", "async break"])
def test_a_stream_the_caller_stops_reading_is_incomplete_not_failed(
    how: str, gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    import asyncio

    kwargs = {"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with session("sess_stopped"):
        if how == "async break":
            async def stop_early() -> None:
                client = openai.AsyncOpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
                stream = await client.chat.completions.create(**kwargs)
                async for _ in stream:
                    break
                await stream.close()
                await client.close()

            asyncio.run(stop_early())
        else:
            with openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0) as client:
                if how == "context manager":
                    with client.chat.completions.create(**kwargs) as stream:
                        next(iter(stream))
                else:
                    stream = client.chat.completions.create(**kwargs)
                    for _ in stream:
                        break
                    stream.close()
    (req,) = by_kind(spans, "request")
    # Usage never arrived, so the span says the body is incomplete; but the caller chose to
    # stop ("stop generating"): that is not an error of the call.
    assert req.attributes["alephant.response.incomplete"] is True
    assert "gen_ai.usage.output_tokens" not in req.attributes
    assert req.status.status_code is not StatusCode.ERROR
    assert "error.type" not in req.attributes


def test_the_counted_response_ids_are_bounded() -> None:
    from alephant_otel.wire import _attempt, _response

    def counted(rid: str, operation: str | None, method: bytes, path: str) -> int | None:
        req = _attempt.Attempt(None, path, method)  # type: ignore[arg-type]
        req.operation = operation
        return _response._count_once(_usage.ParsedResponse(response_id=rid, input_tokens=1), req).input_tokens

    for i in range(_response._COUNTED_KEEP + 500):
        assert counted(f"resp_bound{i}", "chat", b"POST", "/v1/responses") == 1
    assert len(_response._counted) == _response._COUNTED_KEEP
    newest = f"resp_bound{_response._COUNTED_KEEP + 499}"
    assert "resp_bound0" not in _response._counted and newest in _response._counted
    # Forgotten, an old response fetched again counts again: the price of a bounded memory.
    assert counted("resp_bound0", None, b"GET", "/gw/v1/responses/resp_bound0?include=x") == 1
    assert counted("resp_bound0", None, b"GET", "/gw/v1/responses/resp_bound0") is None
    # A GET other than a fetched Response repeats usage: a stored chat completion, a batch's results.
    for path in ("/v1/chat/completions/chatcmpl-1", "/v1/messages/batches/b1/results", "/v1/files/f/content"):
        assert counted(f"never{path}", None, b"GET", path) is None
    # A POST with no GenAI operation name can spend tokens (an image, a transcription).
    assert counted("img", None, b"POST", "/v1/images/generations") == 1
    assert counted("img", None, b"POST", "/v1/images/generations") is None  # the same id again


def test_only_responses_are_remembered(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    # Other model calls are never fetched back with usage to count: remembering each chat
    # completion's id would hold memory for every request a worker makes.
    from alephant_otel.wire import _response

    before = set(_response._counted)
    with openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0) as oc, \
            anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0) as ac, session("sess_mem"):
        ids = [
            oc.chat.completions.create(model=MODEL, messages=MESSAGES).id,
            oc.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="hi").id,
            ac.messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=MESSAGES).id,
        ]
        oc.embeddings.create(model="openai/text-embedding-3-small", input="hi")
        made = oc.responses.create(model=MODEL, input="hi").id
    assert len(by_kind(spans, "request")) == 5
    assert set(_response._counted) - before == {made}
    assert not set(ids) & set(_response._counted)


def test_token_billed_calls_without_an_operation_name_still_count(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_img"):
        image = client.images.generate(model="gpt-image-1", prompt="a receipt for order 1234", n=2)
    assert image.usage is not None and image.usage.output_tokens == 544
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert "gen_ai.operation.name" not in a
    assert a["gen_ai.usage.input_tokens"] == image.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == 544
    assert a["alephant.cost.usd"] == pytest.approx(
        expected_cost("gpt-image-1", "openai", image.usage.input_tokens, 544))
    (sess,) = by_kind(spans, "session")
    assert sess.attributes["alephant.total.output_tokens"] == 544


def test_a_request_outside_any_session_is_still_a_request_span(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    # What `sessions list` shows as its "no session" line: a request span with no session id.
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="test", max_retries=0) as client:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    (req,) = by_kind(spans, "request")
    a = req.attributes
    assert a["alephant.request.id"] == gateway.requests[0].headers["x-request-id"]
    assert a["gen_ai.usage.input_tokens"] > 0 and a["alephant.cost.usd"] > 0
    assert not [k for k in a if k.startswith(("alephant.session.", "alephant.run.", "gen_ai.conversation"))]
    assert "alephant-session-id" not in gateway.requests[0].headers


def test_rollup_counters_lose_no_request_finished_on_many_threads_and_stay_bounded() -> None:
    import threading

    from alephant_otel.context._totals import RequestTotals

    totals = RequestTotals()
    per_thread = RequestTotals.FOLD_AT * 2 + 37  # each thread crosses the fold point twice
    start = threading.Barrier(6)

    def finish_requests(worker: int) -> None:
        start.wait()
        for i in range(per_thread):
            totals.add(i % 3 == 0, i % 7 == 0, 0.5 if i % 2 else None, worker + 1, 2)
            assert len(totals.pending) <= RequestTotals.FOLD_AT

    threads = [threading.Thread(target=finish_requests, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = per_thread
    assert totals.attributes() == {
        "alephant.total.requests": 6 * n,
        "alephant.total.retries": 6 * len(range(0, n, 3)),
        "alephant.total.intercepted": 6 * len(range(0, n, 7)),
        "alephant.total.cost.usd": 6 * 0.5 * len(range(1, n, 2)),
        "alephant.total.input_tokens": sum(range(1, 7)) * n,
        "alephant.total.output_tokens": 6 * n * 2,
        "alephant.total.tool_calls": 0,
    }
    assert not totals.pending
