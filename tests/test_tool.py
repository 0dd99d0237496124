"""``tool()``: tool calls as ``execute_tool`` spans in the run, their cost in the roll-ups."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import anthropic
import openai
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import alephant_otel
from alephant_otel import run, session, tool
from alephant_otel.testing import GatewayEmulator
from alephant_otel.testing._server import LoopbackServer, QuietHTTPHandler, QuietHTTPServer

MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Where is my refund for order 1234?"}]


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def kind(spans: InMemorySpanExporter, k: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if (s.attributes or {}).get("alephant.span.kind") == k]


def assert_tool_span(span: ReadableSpan, run_span: ReadableSpan, name: str) -> None:
    a = span.attributes or {}
    assert span.name == f"execute_tool {name}"
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == name
    assert a["alephant.span.kind"] == "tool"
    # The span processor stamps the ids from baggage, as on any span of the run.
    assert a["alephant.session.id"] == a["gen_ai.conversation.id"] == "sess_t"
    assert a["alephant.run.id"] == "run_t" and a["gen_ai.agent.id"] == "triage"
    assert span.parent is not None and span.parent.span_id == run_span.context.span_id
    assert span.context.trace_id == run_span.context.trace_id


def test_the_three_forms_make_tool_spans_under_the_run_and_roll_their_cost_up(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    @tool("web_search", description="Searches the web")
    def search(query: str) -> str:
        return query.upper()

    @tool("lookup_order", call_id="call_async", cost_usd=0.25)
    async def lookup(order: int) -> int:
        await asyncio.sleep(0)
        return order

    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_t"), run("run_t", agent_id="triage"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        with tool("crm", call_id="call_cm", cost_usd=0.5, description="Reads the CRM"):
            pass
        assert search("refund") == "REFUND"
        coro = lookup(1234)
        # The async decorator opens its span when the coroutine runs, not when it is created.
        assert not named(spans, "execute_tool lookup_order")
        assert asyncio.run(coro) == 1234

    (run_span,) = kind(spans, "run")
    (session_span,) = kind(spans, "session")
    (request,) = kind(spans, "request")
    (cm,) = named(spans, "execute_tool crm")
    (deco,) = named(spans, "execute_tool web_search")
    (adeco,) = named(spans, "execute_tool lookup_order")
    for span, name in ((cm, "crm"), (deco, "web_search"), (adeco, "lookup_order")):
        assert_tool_span(span, run_span, name)
    assert cm.attributes["gen_ai.tool.call.id"] == "call_cm"
    assert cm.attributes["gen_ai.tool.description"] == "Reads the CRM"
    assert cm.attributes["alephant.cost.usd"] == 0.5 and cm.attributes["alephant.cost.source"] == "tool"
    assert deco.attributes["gen_ai.tool.description"] == "Searches the web"
    assert "alephant.cost.usd" not in deco.attributes and "gen_ai.tool.call.id" not in deco.attributes
    assert adeco.attributes["gen_ai.tool.call.id"] == "call_async"
    assert adeco.attributes["alephant.cost.usd"] == 0.25
    assert all(s.status.status_code is not StatusCode.ERROR for s in (cm, deco, adeco))

    model_cost = request.attributes["alephant.cost.usd"]
    assert model_cost > 0
    for scope in (run_span, session_span):
        a = scope.attributes
        assert a["alephant.total.cost.usd"] == pytest.approx(model_cost + 0.75)
        assert a["alephant.total.tool_calls"] == 3
        assert a["alephant.total.requests"] == 1  # tool calls are not gateway requests


def test_a_failing_tool_is_marked_and_the_exception_propagates(spans: InMemorySpanExporter) -> None:
    @tool("flaky")
    async def flaky() -> None:
        raise TimeoutError("upstream took too long")

    with session("sess_t"), run("run_t", agent_id="triage"):
        with pytest.raises(KeyError):
            with tool("lookup", cost_usd=0.1):
                raise KeyError("order 9")
        with pytest.raises(TimeoutError, match="upstream"):
            asyncio.run(flaky())
    (run_span,) = kind(spans, "run")
    for name, error in (("lookup", "KeyError"), ("flaky", "TimeoutError")):
        (span,) = named(spans, f"execute_tool {name}")
        assert_tool_span(span, run_span, name)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == error
        assert [e.name for e in span.events] == ["exception"]
    # A failed paid call was still made and billed.
    assert run_span.attributes["alephant.total.tool_calls"] == 2
    assert run_span.attributes["alephant.total.cost.usd"] == pytest.approx(0.1)


def test_a_nested_run_counts_its_tools_in_the_outer_run_and_the_session(spans: InMemorySpanExporter) -> None:
    with session("sess_n"), run("outer", agent_id="a"), run("inner", agent_id="b"), tool("t", cost_usd=1.0):
        pass
    runs = {s.attributes["alephant.run.id"]: s for s in kind(spans, "run")}
    (session_span,) = kind(spans, "session")
    (span,) = kind(spans, "tool")
    assert span.parent.span_id == runs["inner"].context.span_id
    for scope in (runs["inner"], runs["outer"], session_span):
        assert scope.attributes["alephant.total.tool_calls"] == 1
        assert scope.attributes["alephant.total.cost.usd"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "bad\nname"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "t", "call_id": "call 1"}, "call_id"),
        ({"name": "t", "cost_usd": -0.01}, "cost_usd"),
        ({"name": "t", "cost_usd": float("nan")}, "cost_usd"),
        ({"name": "t", "cost_usd": float("inf")}, "cost_usd"),
        ({"name": "t", "cost_usd": True}, "cost_usd"),
        ({"name": "t", "cost_usd": "0.1"}, "cost_usd"),
        ({"name": "t", "description": "x" * 2000}, "description"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        tool(**kwargs)


# --- the tool calls a model response asks for, on its request span ------------------

_CHAT_TOOLS = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "web_search", "arguments": "{}"}},
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}


def _chat_stream() -> bytes:
    def chunk(delta: dict, finish: str | None = None) -> bytes:
        obj = {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    return b"".join(
        [
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_s",
                            "type": "function",
                            "function": {"name": "refund", "arguments": ""},
                        }
                    ],
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"order": 1}'}}]}),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )


_ANTHROPIC_TOOLS = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-latest",
    "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order": 1}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5},
}
_RESPONSES_TOOLS = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "gpt-4o-mini",
    "output": [
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_r",
            "name": "get_weather",
            "arguments": "{}",
            "status": "completed",
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}


class _ToolsHandler(QuietHTTPHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.endswith("/messages"):
            self.send_body(200, json.dumps(_ANTHROPIC_TOOLS).encode(), "application/json")
        elif self.path.endswith("/responses"):
            self.send_body(200, json.dumps(_RESPONSES_TOOLS).encode(), "application/json")
        elif "stream" in self.headers.get("x-test", ""):
            self.send_body(200, _chat_stream(), "text/event-stream")
        else:
            self.send_body(200, json.dumps(_CHAT_TOOLS).encode(), "application/json")


def test_the_tool_calls_a_response_asks_for_are_on_its_request_span(
    spans: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    with LoopbackServer(QuietHTTPServer(("127.0.0.1", 0), _ToolsHandler)) as server:
        alephant_otel.configure(gateway_url=server.url, tracer_provider=tracer_provider)
        oai = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-x", max_retries=0)
        ant = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-x", max_retries=0)
        with oai, ant, session("sess_tc"), run("run_tc", agent_id="triage"):
            oai.chat.completions.create(model=MODEL, messages=MESSAGES)
            list(
                oai.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-test": "stream"}
                )
            )
            ant.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=10, messages=MESSAGES)
            oai.responses.create(model=MODEL, input="weather?")
    got = [
        (s.attributes.get("alephant.response.tool_calls.names"), s.attributes.get("alephant.response.tool_calls.ids"))
        for s in sorted(kind(spans, "request"), key=lambda s: s.start_time)
    ]
    assert got == [
        (("lookup_order", "web_search"), ("call_a", "call_b")),
        (("refund",), ("call_s",)),
        (("lookup_order",), ("toolu_1",)),
        (("get_weather",), ("call_r",)),
    ]


def test_a_response_without_tool_calls_has_no_tool_call_attributes(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_t"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    (req,) = kind(spans, "request")
    assert not [k for k in req.attributes if "tool_calls" in k]


async def test_a_tool_exited_in_another_task_ends_its_span_without_a_detach_traceback(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # A framework hook may start a tool call in one task and end it in the next (as for runs).
    scope = tool("search", cost_usd=0.5)
    with session("sess_x"), run("run_x", agent_id="triage"):
        await asyncio.create_task(_call(scope.__enter__))
        await asyncio.create_task(_call(lambda: scope.__exit__(None, None, None)))
    _out, err = capfd.readouterr()
    assert "Failed to detach" not in err and "Traceback" not in err, err
    assert not [r for r in caplog.records if "Failed to detach" in r.getMessage() or r.exc_info]
    (span,) = kind(spans, "tool")
    (run_span,) = kind(spans, "run")
    assert span.parent.span_id == run_span.context.span_id
    assert run_span.attributes["alephant.total.tool_calls"] == 1


async def _call(fn: Callable[[], object]) -> None:
    fn()


def test_tool_calls_count_in_the_duration_metric_as_execute_tool(
    gateway: GatewayEmulator, metrics: InMemoryMetricReader
) -> None:
    with session("sess_m", path="/support", user_id="u-1", metadata={"plan": "pro"}), run(agent_id="triage"):
        with tool("search", cost_usd=0.5):
            pass
        with pytest.raises(KeyError), tool("crm"):
            raise KeyError("x")
    data = metrics.get_metrics_data()
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.operation.duration"
        for p in m.data.data_points
    ]
    tools = [dict(p.attributes) for p in points if p.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert sorted(a.get("error.type", "") for a in tools) == ["", "KeyError"]
    for a in tools:
        assert a["alephant.agent.id"] == "triage" and a["alephant.session.path"] == "/support"
        # Never unbounded dimensions: no user, no metadata, no ids.
        assert not [k for k in a if k.startswith(("user.", "alephant.metadata.", "alephant.session.id"))]
    costs = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "alephant.client.cost"
    ]
    assert not costs  # the cost counter counts gateway requests only
