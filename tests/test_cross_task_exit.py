"""A session() or run() exited in another asyncio task or thread than it entered.

Framework hooks do this (the OpenAI Agents SDK runs each hook as its own task):
OpenTelemetry's detach() then logs "Failed to detach context" with a traceback
at ERROR. The scope must end its span, restore the exiting context where it
holds the scope, and say once, in one line, what it could not restore.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import current, run, session


def _no_traceback(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> list[str]:
    """The log lines (none may carry a traceback or OTel's detach error); stderr must be empty."""
    _out, err = capfd.readouterr()
    assert "Traceback" not in err and "Failed to detach" not in err, err
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Failed to detach" not in record.getMessage()
    return [r.getMessage() for r in caplog.records if r.name.startswith("alephant_otel")]


def _run_spans(spans: InMemorySpanExporter) -> list[str]:
    return [s.name for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]


async def test_run_exited_in_a_sibling_task(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    scope = run(agent_id="triage")
    seen: dict[str, object] = {}

    async def enter() -> None:  # the SDK's on_agent_start, a task of its own
        scope.__enter__()
        seen["inside"] = current()

    async def leave() -> None:  # on_agent_end, another task
        scope.__exit__(None, None, None)
        seen["after"] = current()

    with session("sess_x"):
        await asyncio.create_task(enter())
        await asyncio.create_task(leave())
        here = current()
    assert seen["inside"].agent_id == "triage"  # type: ignore[attr-defined]
    after = seen["after"]
    assert after.session_id == "sess_x" and after.run_id is None and after.agent_id is None  # type: ignore[attr-defined]
    assert here.session_id == "sess_x" and here.run_id is None
    assert _run_spans(spans) == ["invoke_agent triage"]
    lines = _no_traceback(caplog, capfd)
    assert len([line for line in lines if "exited in another" in line]) == 1


async def test_run_exited_in_a_task_started_inside_it_restores_that_task(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with session("sess_y"):
        scope = run(agent_id="planner")
        scope.__enter__()
        outer_run = current().run_id

        async def leave() -> tuple[str | None, str | None, str | None]:
            assert current().run_id == outer_run  # the task inherited the run
            scope.__exit__(None, None, None)
            c = current()
            return c.session_id, c.run_id, c.agent_id

        assert await asyncio.create_task(leave()) == ("sess_y", None, None)
    assert _run_spans(spans) == ["invoke_agent planner"]
    _no_traceback(caplog, capfd)


def test_session_and_run_exited_in_another_thread_warn_once(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    scopes = [session("sess_t"), run(agent_id="worker")]
    entered = threading.Event()
    afterwards: list[str | None] = []

    def enter() -> None:
        for scope in scopes:
            scope.__enter__()
        entered.set()

    def leave() -> None:
        for scope in reversed(scopes):
            scope.__exit__(None, None, None)
        afterwards.append(current().session_id)

    for target in (enter, leave):
        t = threading.Thread(target=target)
        t.start()
        t.join()
    assert entered.is_set() and afterwards == [None]
    assert current().session_id is None
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["invoke_agent worker", "session"]
    lines = _no_traceback(caplog, capfd)
    assert len([line for line in lines if "exited in another" in line]) == 1


async def test_same_task_exit_stays_silent(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    async with session("sess_z"), run(agent_id="a"):
        assert current().agent_id == "a"
    assert current().session_id is None
    assert _no_traceback(caplog, capfd) == []
