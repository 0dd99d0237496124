"""``session(user_id=..., metadata=...)`` and ``run(metadata=...)``: on every span, carried like the ids."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from _util import clean_env
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import bind_context, context_carrier, current, gateway_headers, run, session, tool
from alephant_otel.testing import GatewayEmulator

MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Where is my refund?"}]
SIX = {
    "alephant-session-id",
    "alephant-session-name",
    "alephant-session-path",
    "alephant-agent-id",
    "alephant-run-id",
    "x-request-id",
}


def ask(client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=MESSAGES)


def dims(span: ReadableSpan) -> dict[str, object]:
    return {k: v for k, v in (span.attributes or {}).items() if k == "user.id" or k.startswith("alephant.metadata.")}


def test_user_and_metadata_are_on_every_span_of_the_session_in_threads_and_tasks(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    tracer = trace.get_tracer("test")

    async def in_a_task() -> None:
        await asyncio.sleep(0)
        await asyncio.to_thread(ask, client)  # to_thread copies the task's context

    with client, ThreadPoolExecutor(2) as pool:
        with session("sess_d", user_id="user-42", metadata={"plan": "pro", "tenant": "acme"}):
            with run("run_d", agent_id="triage", metadata={"step": "lookup"}):
                c = current()
                assert (c.user_id, dict(c.metadata)) == ("user-42", {"plan": "pro", "tenant": "acme", "step": "lookup"})
                ask(client)
                pool.submit(bind_context(ask), client).result()
                asyncio.run(in_a_task())
                with tool("search"), tracer.start_as_current_span("user span"):
                    pass
            ask(client)  # after the run: its metadata is gone, the session's stays
    by_kind: dict[str, list[ReadableSpan]] = {}
    for s in spans.get_finished_spans():
        by_kind.setdefault(s.attributes.get("alephant.span.kind", "other"), []).append(s)
    assert len(by_kind["request"]) == 4 and len(by_kind["other"]) == 1
    in_run = {
        "user.id": "user-42",
        "alephant.metadata.plan": "pro",
        "alephant.metadata.tenant": "acme",
        "alephant.metadata.step": "lookup",
    }
    session_only = {k: v for k, v in in_run.items() if k != "alephant.metadata.step"}
    (session_span,) = by_kind["session"]
    assert dims(session_span) == session_only
    last = max(by_kind["request"], key=lambda s: s.start_time)
    assert dims(last) == session_only
    for s in [*by_kind["run"], *by_kind["tool"], *by_kind["other"], *(r for r in by_kind["request"] if r is not last)]:
        assert dims(s) == in_run, s.name
    # Never gateway headers: the gateway gets its six, no more.
    for req in gateway.requests:
        assert not {h.lower() for h in req.headers if h.lower().startswith(("alephant", "x-request"))} - SIX
        assert "baggage" not in {h.lower() for h in req.headers}
    with session("s", user_id="u", metadata={"plan": "pro"}):
        assert {h.lower() for h in gateway_headers()} <= SIX


def test_user_and_metadata_cross_a_process_in_w3c_baggage(gateway: GatewayEmulator, tmp_path: Path) -> None:
    trace_file = tmp_path / "child.jsonl"
    child = (
        "import json, os, openai, alephant_otel as a\n"
        "a.configure(trace_file=os.environ['TRACE'])\n"
        "with a.attach_carrier(json.loads(os.environ['CARRIER'])), a.run(agent_id='worker'):\n"
        "    c = a.current(); print(c.user_id, dict(c.metadata))\n"
        "    openai.OpenAI(base_url=os.environ['ALEPHANT_GATEWAY_URL'] + '/v1', api_key='sk-x').chat.completions"
        f".create(model={MODEL!r}, messages={MESSAGES!r})\n"
    )
    with session("sess_p", user_id="user-7", metadata={"plan": "team"}):
        carrier = context_carrier()
    out = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=clean_env(CARRIER=json.dumps(carrier), TRACE=str(trace_file), ALEPHANT_GATEWAY_URL=gateway.url),
    ).stdout
    assert out.strip() == "user-7 {'plan': 'team'}"
    attrs = [
        {kv["key"]: next(iter(kv["value"].values())) for kv in sp["attributes"]}
        for line in trace_file.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for sp in ss["spans"]
    ]
    (req,) = [a for a in attrs if a.get("alephant.span.kind") == "request"]
    assert req["user.id"] == "user-7" and req["alephant.metadata.plan"] == "team"
    assert req["alephant.session.id"] == "sess_p"
    assert not [v for v in gateway.requests[0].headers.values() if "user-7" in v or "team" in v]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_id": "bad user"}, "user_id"),
        ({"user_id": "x" * 300}, "user_id"),
        ({"user_id": "caf\u00e9"}, "user_id"),
        ({"metadata": {"bad key": "v"}}, "metadata key"),
        ({"metadata": {"1st": "v"}}, "metadata key"),
        ({"metadata": {"k": "line\nbreak"}}, "metadata\\['k'\\]"),
        ({"metadata": {"k": 1}}, "metadata\\['k'\\]"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata has 17"),
        ({"metadata": ["plan"]}, "metadata must"),
    ],
)
def test_invalid_user_ids_and_metadata_raise_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        session("s", **kwargs)
    if "metadata" in kwargs:
        with pytest.raises(ValueError, match=f"^{field}"):
            run(**kwargs)


def test_the_same_values_as_inbound_baggage_are_dropped_with_one_warning(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = otel_context.get_current()
    for key, value in {
        "alephant.session.id": "sess_in",
        "alephant.user.id": "bad user",
        "alephant.metadata.plan": "line\nbreak",
        "alephant.metadata.bad key": "v",
        "alephant.metadata.tier": "gold",
    }.items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = otel_context.attach(ctx)
    try:
        with caplog.at_level(logging.WARNING, logger="alephant_otel"):
            for _ in range(3):
                c = current()
                with run("run_in"):
                    pass
    finally:
        otel_context.detach(token)
    assert c.session_id == "sess_in" and c.user_id is None and dict(c.metadata) == {"tier": "gold"}
    for s in spans.get_finished_spans():
        assert dims(s) == {"alephant.metadata.tier": "gold"}
    warned = [r.getMessage() for r in caplog.records if "dropping baggage entry" in r.getMessage()]
    assert len(warned) == 3, warned  # one per bad key, not one per read
    for key in ("alephant.user.id", "alephant.metadata.plan", "alephant.metadata.bad key"):
        assert sum(key in w for w in warned) == 1
