"""LangGraph (real ``langgraph`` + ``langchain-openai``) with ``runs_for_nodes``: every node a run.

A sync node and an async node, each calling the model through ``ChatOpenAI``
pointed at the emulator, under ``invoke``, ``ainvoke``, ``stream`` and ``astream``:
each request carries its session, its node as the agent, and its node's run.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import httpx2
import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import current, session
from alephant_otel.testing import GatewayEmulator

pytest.importorskip("langgraph")
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from alephant_otel.integrations.langgraph import runs_for_nodes

MODEL = "openai/gpt-4o-mini"


class State(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]


@pytest.fixture
def gw(spans: InMemorySpanExporter, tracer_provider: Any) -> Iterator[GatewayEmulator]:
    with GatewayEmulator() as emulator:
        alephant_otel.configure(gateway_url=emulator.url, tracer_provider=tracer_provider)
        yield emulator


def _graph(gw: GatewayEmulator, *, async_researcher: bool = True) -> Any:
    limits = httpx2.Limits(max_keepalive_connections=0)  # nothing left open after each test
    llm = ChatOpenAI(
        model=MODEL,
        base_url=gw.openai_base_url,
        api_key="k",  # type: ignore[arg-type]
        max_retries=0,
        http_client=openai.DefaultHttpxClient(limits=limits),
        http_async_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )

    async def research(state: State) -> dict[str, Any]:  # async node
        seen = current()
        reply = await llm.ainvoke(f"research {state['topic']}")
        return {"notes": [f"{seen.agent_id}:{reply.content}"]}

    def research_sync(state: State) -> dict[str, Any]:
        seen = current()
        reply = llm.invoke(f"research {state['topic']}")
        return {"notes": [f"{seen.agent_id}:{reply.content}"]}

    def write(state: State) -> dict[str, Any]:  # sync node (a worker thread under ainvoke/astream)
        seen = current()
        llm.invoke(f"write about {state['topic']}")
        reply = llm.invoke(f"polish {state['topic']}")
        return {"notes": [f"{seen.agent_id}:{reply.content}"]}

    builder = StateGraph(State)
    builder.add_node("researcher", research if async_researcher else research_sync)
    builder.add_node("writer", write)
    builder.add_edge(START, "researcher")
    builder.add_edge("researcher", "writer")
    builder.add_edge("writer", END)
    runs_for_nodes(builder)
    assert runs_for_nodes(builder) is builder  # twice wraps nothing twice
    return builder.compile()


def _check(gw: GatewayEmulator, sid: str) -> None:
    reqs = gw.requests
    assert [r.headers["alephant-agent-id"] for r in reqs] == ["researcher", "writer", "writer"]
    assert {r.headers["alephant-session-id"] for r in reqs} == {sid}
    runs = [r.headers["alephant-run-id"] for r in reqs]
    assert runs[1] == runs[2] != runs[0]


def test_invoke_and_stream(gw: GatewayEmulator) -> None:
    graph = _graph(gw, async_researcher=False)  # invoke runs sync nodes only
    with session("sess_lg1"):
        out = graph.invoke({"topic": "otters", "notes": []})
        assert current().run_id is None
    assert [note.split(":")[0] for note in out["notes"]] == ["researcher", "writer"]
    _check(gw, "sess_lg1")
    gw.clear()
    with session("sess_lg2"):
        updates = list(graph.stream({"topic": "otters", "notes": []}, stream_mode="updates"))
    assert [next(iter(u)) for u in updates] == ["researcher", "writer"]
    _check(gw, "sess_lg2")


async def test_ainvoke(gw: GatewayEmulator) -> None:
    graph = _graph(gw)
    async with session("sess_lg3"):
        out = await graph.ainvoke({"topic": "otters", "notes": []})
    assert [note.split(":")[0] for note in out["notes"]] == ["researcher", "writer"]
    _check(gw, "sess_lg3")


@pytest.mark.parametrize("mode", ["updates", "messages"])
async def test_astream(gw: GatewayEmulator, spans: InMemorySpanExporter, mode: str) -> None:
    graph = _graph(gw)
    async with session("sess_lg4"):
        chunks = [chunk async for chunk in graph.astream({"topic": "otters", "notes": []}, stream_mode=mode)]
    assert chunks
    _check(gw, "sess_lg4")
    runs = {s.attributes["gen_ai.agent.name"] for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")}
    assert runs == {"researcher", "writer"}
    if mode == "messages":
        # langchain-openai streams here, and with a custom base_url asks for no usage chunk:
        # the request spans then have no gen_ai.usage.* (read back as "usage unknown").
        streamed = [r for r in gw.requests if r.json.get("stream")]
        assert streamed and not any((r.json.get("stream_options") or {}).get("include_usage") for r in streamed)
        requests = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.request.id")]
        assert requests and not any("gen_ai.usage.input_tokens" in s.attributes for s in requests)


def test_a_compiled_graph_is_refused() -> None:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {})
    builder.add_edge(START, "a")
    with pytest.raises(TypeError, match="before compile"):
        runs_for_nodes(builder.compile())
