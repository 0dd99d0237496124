"""The same sessions read back from a real Arize Phoenix server give the same totals as the trace file.

Real traffic (the openai and anthropic SDKs against the gateway emulator:
nested runs, a 429 the SDK retries, a policy interception, a stream, a
request outside any run) is traced by one provider that writes the local
trace file and exports OTLP/HTTP to a Phoenix server this module starts on
loopback. Both are read back with ``read_sessions`` and must agree on every
session: totals, status, tree shape, every request, to the microsecond
Phoenix stores times in.

Phoenix (``arize-phoenix``, pinned in ``scripts/install-phoenix.sh``) lives in
its own environment, ``.venv-phoenix`` (or ``$ALEPHANT_PHOENIX_VENV``); without
it the module is skipped and says how to install it. A server that is
installed but does not start fails. Under ``.ci/run`` the install runs in the
background while the rest of the suite does: the module runs last on one
worker (conftest.py orders it) and waits for the install to finish.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from _util import ROOT, clean_env, wait_for_ci_job
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import _names as n
from alephant_otel import run, session
from alephant_otel.analytics import (
    PhoenixSource,
    Request,
    Run,
    Session,
    SessionSet,
    SourceError,
    SpanQuery,
    read_sessions,
)
from alephant_otel.export._tracefile import TraceFileExporter
from alephant_otel.testing import Fault, GatewayEmulator

PHOENIX_VENV = Path(os.environ.get("ALEPHANT_PHOENIX_VENV") or ROOT / ".venv-phoenix")
# Written by the install script as its last step: a half-built venv never counts.
PHOENIX_MARKER = PHOENIX_VENV / "alephant-phoenix-installed"
PROJECT = "alephant-roundtrip"
SUPPORT = "sess_px_support"
BILLING = "sess_px_billing"
MODEL = "openai/gpt-4o-mini"
START_TIMEOUT_S = 180.0  # first start runs Phoenix's migrations; ~10 s on the 2-core CI machine
INGEST_TIMEOUT_S = 60.0  # Phoenix inserts OTLP spans asynchronously, in batches
US = 1_000  # Phoenix keeps times in microseconds
# How long to wait for .ci/run's background install: the script bounds pip at 1200 s.
INSTALL_WAIT_S = 1320.0

pytestmark = pytest.mark.xdist_group("phoenix")  # one server, on one worker


@dataclass(frozen=True)
class Phoenix:
    url: str
    log: Path
    started_in_s: float

    def source(self, **kw: Any) -> PhoenixSource:
        return PhoenixSource(self.url, PROJECT, **kw)

    @property
    def spec(self) -> str:
        return f"phoenix+{self.url}?project={PROJECT}"


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """A Phoenix server on loopback (sqlite in a temp dir, no telemetry), stopped at teardown."""
    install = wait_for_ci_job("phoenix", INSTALL_WAIT_S)
    if install == "timeout":
        pytest.skip(f"the background Phoenix install was still running after {INSTALL_WAIT_S:.0f} s")
    if not PHOENIX_MARKER.is_file():
        pytest.skip(f"Arize Phoenix is not installed in {PHOENIX_VENV.name}: run scripts/install-phoenix.sh")
    workdir = tmp_path_factory.mktemp("phoenix")
    http_port, grpc_port = _free_ports(2)
    env = {k: v for k, v in clean_env().items() if not k.startswith("PHOENIX_")}
    env.update(
        HOME=str(workdir),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(workdir),  # sqlite database here (the default store)
        # No start-up or UI call leaves the machine: no telemetry pixels, web fonts,
        # sandbox download, or agent assistant.
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
    )
    log = workdir / "phoenix.log"
    url = f"http://127.0.0.1:{http_port}"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(PHOENIX_VENV / "bin" / "python"), "-m", "phoenix.server.main", "serve"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown stops every child
        )
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"phoenix exited with {proc.returncode} before it was healthy:\n{_tail(log)}")
            try:
                if httpx.get(url + "/healthz", timeout=2.0, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(f"phoenix not healthy on {url} after {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")
            time.sleep(0.2)
        yield Phoenix(url, log, time.monotonic() - started)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def _traffic(gw: GatewayEmulator) -> None:
    """Two sessions through the real SDKs: every kind of request the analytics must read back."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-phoenix-test", max_retries=2)
    claude = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-phoenix-test", max_retries=0)
    gw.add_fault(Fault.status(429, retry_after=0.01), times=1, path="/v1/embeddings")
    gw.add_fault(Fault.policy("Request for personal data (PII guardrail)", code="pii_guardrail"), path="/v1/responses")

    def chat(text: str) -> None:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])

    with client, claude:
        with session(SUPPORT, name="Refund for order 1042", path="/support/refund"):
            with run(agent_id="triage"):
                chat("Classify this ticket: refund for order 1042 has not arrived")
                with run(agent_id="kb-search"):  # 429, then the SDK's retry
                    client.embeddings.create(model="openai/text-embedding-3-small", input="refund order 1042 policy")
                with run(agent_id="writer"):
                    stream = client.chat.completions.create(
                        model=MODEL,
                        stream=True,
                        stream_options={"include_usage": True},
                        messages=[{"role": "user", "content": "Write the reply for the refund of order 1042"}],
                    )
                    for _ in stream:
                        pass
            with run(agent_id="responder"), pytest.raises(openai.PermissionDeniedError):
                client.responses.create(model=MODEL, input="Share the customer's home address")
        with session(BILLING, name="Invoice copy", path="/billing/invoice"):
            chat("Which invoice does the customer mean?")  # outside any run
            with run(agent_id="billing"):
                chat("Find invoice 2024-117 for account 88")
                with run(agent_id="ledger"):
                    claude.messages.create(
                        model="anthropic/claude-3-5-haiku-latest",
                        max_tokens=64,
                        messages=[{"role": "user", "content": "Summarise the ledger entries of invoice 2024-117"}],
                    )


@dataclass(frozen=True)
class RoundTrip:
    phoenix: Phoenix
    trace_file: Path
    spans: tuple[ReadableSpan, ...]
    gateway_requests: list[Any]
    ingest_s: float


def _phoenix_span_count(phoenix: Phoenix) -> int:
    try:
        return sum(1 for _ in phoenix.source().spans(SpanQuery()))
    except SourceError:  # the project appears with its first ingested span
        return 0


@pytest.fixture(scope="module")
def roundtrip(phoenix: Phoenix, tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    """The traffic, traced to the trace file and to Phoenix; returns once Phoenix has every span."""
    trace_file = tmp_path_factory.mktemp("phoenix-traces") / "traces.otlp.jsonl"
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "phoenix-roundtrip", "openinference.project.name": PROJECT})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(TraceFileExporter(trace_file)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=phoenix.url + "/v1/traces")))
    suite_provider = trace.get_tracer_provider()
    with GatewayEmulator(report_cost=True) as gw:
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider)
        try:
            _traffic(gw)
            assert provider.force_flush(30_000)
        finally:
            provider.shutdown()
            # Back to the suite's provider: HTTP spans follow configure(tracer_provider=...).
            alephant_otel.configure(gateway_url=gw.url, tracer_provider=suite_provider)
        gateway_requests = gw.requests
    spans = tuple(memory.get_finished_spans())
    flushed = time.monotonic()
    deadline = flushed + INGEST_TIMEOUT_S
    while (seen := _phoenix_span_count(phoenix)) < len(spans):
        assert time.monotonic() < deadline, f"phoenix has {seen} of {len(spans)} spans after {INGEST_TIMEOUT_S} s"
        time.sleep(0.1)
    assert seen == len(spans)
    return RoundTrip(phoenix, trace_file, spans, gateway_requests, time.monotonic() - flushed)


# --- comparing two reads ----------------------------------------------------------


def _request_view(r: Request) -> dict[str, Any]:
    return {
        "ids": (r.request_id, r.trace_id, r.span_id, r.parent_span_id, r.run_id, r.run_parent_id, r.agent_id),
        "name": r.name,
        "genai": (r.operation, r.provider, r.request_model, r.response_model, r.session_path),
        "tokens": (r.input_tokens, r.output_tokens),
        "cost": (pytest.approx(r.cost_usd, rel=1e-12, abs=1e-15), r.cost_source),
        "flags": (r.retry_attempt, r.intercepted, r.streaming, r.error, r.status_message, r.http_status),
        "policy": r.policy_events,
    }


def _run_view(run_: Run) -> dict[str, Any]:
    return {
        "run": (run_.run_id, run_.agent_id, run_.parent_run_id, run_.span_present, run_.error),
        "requests": [q.request_id for q in run_.requests],
        "totals": (run_.request_count, run_.retries, run_.errors, run_.intercepted, run_.input_tokens),
        "cost": pytest.approx(run_.cost_usd, rel=1e-12, abs=1e-15),
        "rollup": run_.rollup is not None and run_.rollup.requests,
        "runs": [_run_view(c) for c in run_.runs],
    }


def _session_view(s: Session) -> dict[str, Any]:
    """Everything a user sees of a session, times aside (compared to the microsecond separately)."""
    return {
        "session": (s.session_id, s.name, s.path, s.status, s.span_present, s.agents, s.trace_ids),
        "totals": (s.request_count, s.input_tokens, s.output_tokens, s.retries, s.errors, s.intercepted),
        "cost": pytest.approx(s.cost_usd, rel=1e-12, abs=1e-15),
        "rollup": (s.rollup is not None and s.rollup.requests, s.rollup_matches, s.totals_from_rollup),
        "policy": s.policy_events,
        "tree": [_run_view(r) for r in s.runs],
        "direct": [q.request_id for q in s.direct_requests],
        "requests": {q.request_id: _request_view(q) for q in s.requests},
    }


def _times(s: Session) -> list[tuple[str, int]]:
    out = [("session.start", s.start_ns), ("session.end", s.end_ns or 0)]
    out += [(f"run {r.run_id} start", r.start_ns) for r in s.walk_runs()]
    out += [(f"run {r.run_id} end", r.end_ns) for r in s.walk_runs()]
    out += [(f"request {q.request_id} start", q.start_ns) for q in s.requests]
    out += [(f"request {q.request_id} end", q.end_ns) for q in s.requests]
    return sorted(out)


def assert_same_sessions(expected: SessionSet, actual: SessionSet) -> None:
    assert [s.session_id for s in actual.sessions] == [s.session_id for s in expected.sessions]
    for want, got in zip(expected.sessions, actual.sessions, strict=False):
        assert _session_view(got) == _session_view(want)
        for (what, t_want), (what_got, t_got) in zip(_times(want), _times(got), strict=True):
            assert what_got == what
            assert abs(t_got - t_want) <= US, what


# --- the tests --------------------------------------------------------------------------------


def _later() -> int:
    return time.time_ns() + 3600 * 10**9  # an hour on: nothing counts as active


def test_phoenix_gives_the_same_sessions_as_the_trace_file(roundtrip: RoundTrip) -> None:
    now = _later()
    from_file = read_sessions(roundtrip.trace_file, now_ns=now)
    from_phoenix = read_sessions(roundtrip.phoenix.spec, now_ns=now)
    assert from_phoenix.source == f"phoenix at {roundtrip.phoenix.url} (project {PROJECT})"
    assert from_file.spans == from_phoenix.spans == len(roundtrip.spans)
    assert from_file.corrupt == from_phoenix.corrupt == 0
    assert_same_sessions(from_file, from_phoenix)

    # ...and both tell what happened, checked against what the process and the wire saw.
    by = {s.session_id: s for s in from_phoenix.sessions}
    assert set(by) == {SUPPORT, BILLING}
    for sid, s in by.items():
        sent = {
            r.headers[n.HEADER_REQUEST_ID]
            for r in roundtrip.gateway_requests
            if r.headers.get(n.HEADER_SESSION_ID) == sid
        }
        assert {q.request_id for q in s.requests} == sent
        made = [
            sp.attributes or {}
            for sp in roundtrip.spans
            if (sp.attributes or {}).get(n.ATTR_SPAN_KIND) == n.SPAN_KIND_REQUEST
            and (sp.attributes or {}).get(n.ATTR_SESSION_ID) == sid
        ]
        assert s.request_count == len(made)
        assert s.input_tokens == sum(int(a.get(n.GEN_AI_USAGE_INPUT_TOKENS, 0)) for a in made) > 0
        assert s.output_tokens == sum(int(a.get(n.GEN_AI_USAGE_OUTPUT_TOKENS, 0)) for a in made) > 0
        assert s.cost_usd == pytest.approx(sum(float(a.get(n.ATTR_COST_USD, 0.0)) for a in made), rel=1e-12)
        for q in s.requests:  # the emulator reports $1/M input, $2/M output tokens as the gateway cost
            if not q.error:
                assert q.cost_source == n.COST_SOURCE_GATEWAY
                assert q.cost_usd == pytest.approx(GatewayEmulator.cost_for(q.input_tokens, q.output_tokens))
    support, billing = by[SUPPORT], by[BILLING]
    assert (support.request_count, support.retries, support.intercepted, support.errors) == (5, 1, 1, 2)
    assert support.status == "intercepted"
    assert [e.code for e in support.policy_events] == ["pii_guardrail"]
    assert [(r.agent_id, [c.agent_id for c in r.runs]) for r in support.runs] == [
        ("triage", ["kb-search", "writer"]),
        ("responder", []),
    ]
    assert [q.retry_attempt for q in support.find_run(support.runs[0].runs[0].run_id).requests] == [0, 1]
    assert [q.streaming for q in support.runs[0].runs[1].requests] == [True]
    assert (billing.request_count, billing.retries, billing.intercepted, billing.status) == (3, 0, 0, "completed")
    assert len(billing.direct_requests) == 1
    assert [r.agent_id for r in billing.walk_runs()] == ["billing", "ledger"]
    assert billing.runs[0].runs[0].requests[0].provider == "anthropic"
    for s in (support, billing):
        assert s.span_present
        assert s.rollup_matches is True


def test_phoenix_pages_are_followed(roundtrip: RoundTrip) -> None:
    """Small pages make the real server's cursor carry the read across many requests."""
    pages: list[int] = []
    paged = read_sessions(
        roundtrip.phoenix.source(page_size=3), now_ns=_later(), progress=lambda done, total: pages.append(done)
    )
    assert len(pages) == math.ceil(len(roundtrip.spans) / 3) >= 5
    assert paged.spans == len(roundtrip.spans)
    assert_same_sessions(read_sessions(roundtrip.trace_file, now_ns=_later()), paged)


def test_phoenix_narrows_by_session_and_time_on_the_server(roundtrip: RoundTrip) -> None:
    now = _later()
    billing = read_sessions(roundtrip.trace_file, now_ns=now, session_id=BILLING)
    billing.sessions = [s for s in billing.sessions if s.session_id == BILLING]  # a file is read whole
    billing_spans = sum(1 for sp in roundtrip.spans if (sp.attributes or {}).get(n.ATTR_SESSION_ID) == BILLING)

    pages: list[int] = []
    by_id = read_sessions(
        roundtrip.phoenix.source(page_size=2),
        now_ns=now,
        session_id=BILLING,
        progress=lambda done, total: pages.append(done),
    )
    assert_same_sessions(billing, by_id)
    # Phoenix filtered: only the session's own spans came over the wire.
    assert len(pages) == math.ceil(billing_spans / 2)

    (s,) = billing.sessions
    assert s.end_ns is not None
    # Phoenix filters on span start time; a microsecond either side of the session.
    in_window = read_sessions(roundtrip.phoenix.spec, now_ns=now, since_ns=s.start_ns - US, until_ns=s.end_ns + US)
    assert_same_sessions(billing, in_window)
    before = read_sessions(roundtrip.phoenix.spec, now_ns=now, until_ns=s.start_ns - US)
    assert [x.session_id for x in before.sessions] == [SUPPORT]


def test_phoenix_startup_stays_on_loopback(roundtrip: RoundTrip) -> None:
    """The server was told to make no outside call; its boot message says so."""
    log = roundtrip.phoenix.log.read_text(errors="replace")
    assert "Telemetry" in log
    telemetry = next(line for line in log.splitlines() if "Telemetry" in line)
    assert "disabled" in telemetry.lower(), telemetry
