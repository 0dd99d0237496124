"""The OpenAI Agents SDK (the real ``openai-agents``) against the emulator playing tool calls.

Only ``configure()`` and ``session()``: every agent of the SDK becomes a run by
itself, a handoff ends one run and starts the next, an agent used as a tool is
a child run, and a sync function tool (run in the SDK's worker thread) that
makes its own model call makes it in its agent's run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import current, session
from alephant_otel.analytics import load_sessions
from alephant_otel.export._tracefile import TraceFileExporter
from alephant_otel.testing import GatewayEmulator

agents = pytest.importorskip("agents")
from agents import Agent, RunConfig, Runner, TracingProcessor, add_trace_processor, function_tool  # noqa: E402
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel  # noqa: E402
from agents.models.openai_responses import OpenAIResponsesModel  # noqa: E402
from agents.tracing import default_exporter  # noqa: E402

MODEL = "openai/gpt-4o-mini"
HANDOFF = "transfer_to_refund_specialist"


class Collect(TracingProcessor):
    """The user's own processor: it must keep receiving the SDK's spans."""

    def __init__(self) -> None:
        self.agent_spans: list[str] = []

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        pass

    def on_span_end(self, span: Any) -> None:
        if span.span_data.type == "agent":
            self.agent_spans.append(span.span_data.name)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


USER_PROCESSOR = Collect()
add_trace_processor(USER_PROCESSOR)  # before configure(), as an app would
# The SDK's own exporter stays (runs must not depend on it), but never reaches outside the machine,
# even where an OPENAI_API_KEY is set: a closed loopback port.
default_exporter().endpoint = "http://127.0.0.1:9/v1/traces/ingest"


@pytest.fixture
def gw(spans: InMemorySpanExporter, tracer_provider: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayEmulator]:
    # The SDK's own export has no key: it skips, and agent runs must not depend on it.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with GatewayEmulator(tool_calls=True) as emulator:
        alephant_otel.configure(gateway_url=emulator.url, tracer_provider=tracer_provider)
        yield emulator


def _client(gw: GatewayEmulator) -> openai.AsyncOpenAI:
    # No kept-alive connections: run_sync and each test's loop end with nothing left open.
    http = openai.DefaultAsyncHttpxClient(limits=httpx2.Limits(max_keepalive_connections=0))
    return openai.AsyncOpenAI(base_url=gw.openai_base_url, api_key="k", max_retries=0, http_client=http)


def _agents(gw: GatewayEmulator, api: str = "responses") -> Agent[Any]:
    client = _client(gw)
    model: Any = (
        OpenAIResponsesModel(MODEL, client) if api == "responses" else OpenAIChatCompletionsModel(MODEL, client)
    )

    @function_tool
    def lookup_order(order: str) -> str:
        """Look an order up (a sync tool: the SDK runs it in a worker thread), with a model call of its own."""
        with openai.OpenAI(base_url=gw.openai_base_url, api_key="k", max_retries=0) as sync_client:
            done = sync_client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"summarise {order}"}]
            )
        return done.choices[0].message.content or ""

    specialist = Agent(name="Refund specialist", instructions="Refund orders.", tools=[lookup_order], model=model)
    return Agent(name="triage", instructions="Route the user.", handoffs=[specialist], model=model)


def _agent_of(request: Any) -> str:
    tools = [t.get("name") or t.get("function", {}).get("name") for t in (request.json or {}).get("tools") or ()]
    return "triage" if HANDOFF in tools else "Refund_specialist"


def _check_requests(gw: GatewayEmulator, sessions: list[str]) -> None:
    by_session: dict[str, list[Any]] = {s: [] for s in sessions}
    for r in gw.requests:
        sid = r.headers["alephant-session-id"]
        assert sid in by_session, sid
        assert f"order {sid[-1]}" in r.body.decode(), (sid, r.body[:300])  # the request is that session's
        assert r.headers["alephant-agent-id"] == _agent_of(r), r.json
        by_session[sid].append(r)
    for sid, reqs in by_session.items():
        # triage: the handoff call; specialist: the lookup call, the tool's own call, the answer.
        assert sorted(r.headers["alephant-agent-id"] for r in reqs) == ["Refund_specialist"] * 3 + ["triage"], sid
        runs = {r.headers["alephant-agent-id"]: set() for r in reqs}
        for r in reqs:
            runs[r.headers["alephant-agent-id"]].add(r.headers["alephant-run-id"])
        assert all(len(ids) == 1 for ids in runs.values()) and len(set.union(*runs.values())) == 2, runs


def _tree(spans: InMemorySpanExporter, tmp_path: Path, sid: str) -> list[tuple[str | None, int, list[Any]]]:
    path = tmp_path / "agents.otlp.jsonl"
    exporter = TraceFileExporter(path)
    exporter.export(spans.get_finished_spans())
    exporter.shutdown()
    (s,) = [s for s in load_sessions(str(path)) if s.session_id == sid]
    return [(run.agent_id, run.request_count, run.runs) for run in s.runs]


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_four_sessions_at_once_handoff_and_tool_in_a_thread(
    gw: GatewayEmulator, spans: InMemorySpanExporter, tmp_path: Path, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="alephant_otel")
    caplog.set_level(logging.DEBUG, logger="opentelemetry")
    triage = _agents(gw, api)
    sessions = [f"sess_{i}" for i in range(4)]

    async def one(sid: str) -> str:
        async with session(sid):
            result = await Runner.run(triage, f"refund order {sid[-1]}")
            assert current().run_id is None  # every run the SDK opened is closed again
        return str(result.final_output)

    outputs = await asyncio.gather(*(one(s) for s in sessions))
    assert all(outputs)
    assert len(gw.requests) == 16
    _check_requests(gw, sessions)
    # Two runs side by side (a handoff ends one and starts the next), each with its requests.
    assert _tree(spans, tmp_path, "sess_2") == [("triage", 1, []), ("Refund_specialist", 3, [])]
    run_spans = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert sorted({s.name for s in run_spans}) == ["invoke_agent Refund specialist", "invoke_agent triage"]
    assert "triage" in USER_PROCESSOR.agent_spans
    # Ours and OpenTelemetry's (no "Failed to detach context"); the SDK's own export may warn of its key.
    ours = [r for r in caplog.records if r.name.startswith(("alephant_otel", "opentelemetry"))]
    assert not [r for r in ours if r.levelno >= logging.WARNING], caplog.text


def test_run_sync(gw: GatewayEmulator) -> None:
    triage = _agents(gw)
    try:
        with session("sess_5"):
            result = Runner.run_sync(triage, "refund order 5")
    finally:
        # run_sync makes the loop it ran on this thread's default and leaves it open.
        policy = asyncio.get_event_loop_policy()
        policy.get_event_loop().close()
        policy.set_event_loop(None)
    assert result.final_output
    _check_requests(gw, ["sess_5"])


async def test_run_streamed(gw: GatewayEmulator) -> None:
    triage = _agents(gw)
    async with session("sess_6"):
        result = Runner.run_streamed(triage, "refund order 6")
        events = [event async for event in result.stream_events()]
    assert events and result.final_output
    _check_requests(gw, ["sess_6"])


async def test_agents_as_tools_nest(gw: GatewayEmulator, spans: InMemorySpanExporter, tmp_path: Path) -> None:
    model = OpenAIResponsesModel(MODEL, _client(gw))
    translator = Agent(name="translator", instructions="Translate.", model=model)
    orchestrator = Agent(
        name="orchestrator",
        instructions="Use your tools.",
        tools=[translator.as_tool(tool_name="translate", tool_description="Translate the text")],
        model=model,
    )
    async with session("sess_7"):
        await Runner.run(orchestrator, "translate order 7")
    agents_seen = [r.headers["alephant-agent-id"] for r in gw.requests]
    assert agents_seen == ["orchestrator", "translator", "orchestrator"]
    outer, inner = gw.requests[0].headers["alephant-run-id"], gw.requests[1].headers["alephant-run-id"]
    assert outer != inner and gw.requests[2].headers["alephant-run-id"] == outer
    (top,) = [(a, n, runs) for a, n, runs in _tree(spans, tmp_path, "sess_7")]
    assert top[0] == "orchestrator" and top[1] == 3  # its own two requests and the child run's
    assert [(c.agent_id, c.parent_run_id, c.request_count) for c in top[2]] == [("translator", outer, 1)]


async def test_sdk_tracing_disabled_says_once_that_runs_cannot_be_attributed(
    gw: GatewayEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    from alephant_otel.integrations import openai_agents

    openai_agents._warned_disabled = False
    triage = _agents(gw)
    caplog.set_level(logging.WARNING, logger="alephant_otel")
    async with session("sess_8"):
        for _ in range(2):
            await Runner.run(triage, "refund order 8", run_config=RunConfig(tracing_disabled=True))
    assert {r.headers["alephant-session-id"] for r in gw.requests} == {"sess_8"}
    assert not any("alephant-agent-id" in r.headers for r in gw.requests)
    said = [r for r in caplog.records if "tracing is disabled" in r.getMessage()]
    assert len(said) == 1


async def test_the_switch_turns_the_integration_off(
    gw: GatewayEmulator, tracer_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    triage = _agents(gw)
    monkeypatch.setenv("ALEPHANT_AGENTS_INTEGRATION", "false")
    alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
    try:
        async with session("sess_9"):
            await Runner.run(triage, "refund order 9")
    finally:
        monkeypatch.delenv("ALEPHANT_AGENTS_INTEGRATION")
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=tracer_provider)
    assert gw.requests and not any("alephant-agent-id" in r.headers for r in gw.requests)
    gw.clear()
    async with session("sess_9"):
        await Runner.run(triage, "refund order 9", run_config=RunConfig())
    assert all("alephant-agent-id" in r.headers for r in gw.requests)


async def test_replacing_the_sdk_processors_keeps_agent_runs(gw: GatewayEmulator) -> None:
    from agents import set_trace_processors

    triage = _agents(gw)
    USER_PROCESSOR.agent_spans.clear()
    set_trace_processors([USER_PROCESSOR])  # the app drops the SDK's exporter for its own
    async with session("sess_10"):
        await Runner.run(triage, "refund order 0")
    assert {r.headers.get("alephant-agent-id") for r in gw.requests} == {"triage", "Refund_specialist"}
    assert USER_PROCESSOR.agent_spans == ["triage", "Refund specialist"]


async def test_a_failed_agent_fails_its_run(gw: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    from alephant_otel.testing import Fault

    triage = _agents(gw)
    gw.add_fault(Fault.status(400))
    async with session("sess_11"):
        with pytest.raises(openai.BadRequestError):
            await Runner.run(triage, "refund order 1")
        assert current().run_id is None
    (run_span,) = [s for s in spans.get_finished_spans() if s.name == "invoke_agent triage"]
    assert run_span.status.status_code.name == "ERROR"


def test_agent_ids_from_names() -> None:
    from alephant_otel.integrations import agent_id_for

    assert agent_id_for("triage") == "triage"
    assert agent_id_for("Refund specialist") == "Refund_specialist"
    assert agent_id_for("  a\tb\r\nc  ") == "a_b_c"
    assert agent_id_for("Übersetzer") == "bersetzer"
    assert agent_id_for("x" * 300) == "x" * 256
    assert agent_id_for("   ") == "agent" and agent_id_for(None) == "agent"


def test_nothing_is_imported_before_the_app_imports_agents() -> None:
    import subprocess
    import sys

    code = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from alephant_otel import AlephantInstrumentor
AlephantInstrumentor().instrument(tracer_provider=TracerProvider())
assert not {"agents", "langgraph", "langchain_core"} & set(sys.modules), "a framework was imported"
assert "alephant_otel.integrations.openai_agents" not in sys.modules
import agents  # the app's own import: the processor is added now
from alephant_otel.integrations import openai_agents
assert openai_agents._installed is not None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_importing_the_integration_first_installs_it_once() -> None:
    import subprocess
    import sys

    code = """
from opentelemetry.sdk.trace import TracerProvider
import alephant_otel
alephant_otel.configure(tracer_provider=TracerProvider(), gateway_url="http://127.0.0.1:9")
from alephant_otel.integrations import openai_agents  # imports agents itself
assert openai_agents._installed is not None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "alephant_otel" not in done.stderr, done.stderr  # no "could not add the ... processor"
