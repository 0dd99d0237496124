"""Issue 22: a bad trace path never stalls an exit; a normal exit is no error and loses no request.

Also the two small ones from the same probe: the emulator records chunked request bodies, and an
IP-literal gateway matches whichever way its address is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _util import ROOT, clean_env
from opentelemetry.sdk.trace import TracerProvider

from alephant_otel import configure, session
from alephant_otel.testing import GatewayEmulator

SPANS_SCRIPT = r"""
import os
import alephant_otel
from alephant_otel import run, session
alephant_otel.configure(trace_file=os.environ["TRACE_FILE"])
for i in range(3):
    with session(f"sess_{i}"), run(agent_id="a"):
        pass
import time
print(time.time(), flush=True)  # the exit starts here
"""


def _spans(path: Path) -> list[dict[str, Any]]:
    return [
        s
        for line in path.read_bytes().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values()), None) for a in span.get("attributes", ())}


def _run_script(script: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``script``; with it, how long its exit took (from the time it prints last, if any)."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(OTEL_TRACES_EXPORTER="none", **env), cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    printed = done.stdout.split()
    return done, time.time() - (float(printed[-1]) if printed else started)


@pytest.fixture
def bad_path(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    kind = request.param
    if kind == "fifo":
        path = tmp_path / "traces.fifo"
        os.mkfifo(path)
        yield str(path)
    elif kind == "directory":
        yield str(tmp_path)
    elif kind == "/dev/full":
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full here")
        yield "/dev/full"
    elif kind == "read-only file":
        if os.geteuid() == 0:
            # Root writes through file modes; procfs refuses everyone.
            yield "/proc/version"
        else:
            path = tmp_path / "ro.jsonl"
            path.write_bytes(b"")
            path.chmod(0o444)
            yield str(path)
    else:  # a read-only directory: the file cannot be created
        if os.geteuid() == 0:
            yield "/proc/alephant-otel/traces.jsonl"
        else:
            tmp_path.chmod(0o555)
            yield str(tmp_path / "traces.jsonl")
            tmp_path.chmod(0o755)


@pytest.mark.parametrize(
    "bad_path", ["fifo", "directory", "/dev/full", "read-only file", "read-only directory"], indirect=True
)
def test_a_bad_trace_path_warns_once_and_never_stalls_the_exit(bad_path: str) -> None:
    done, took = _run_script(SPANS_SCRIPT, TRACE_FILE=bad_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert took < 5.0, f"exit took {took:.1f} s"
    warnings = [line for line in done.stderr.splitlines() if "trace file" in line]
    assert len(warnings) == 1, done.stderr
    assert bad_path in warnings[0]


def test_dev_null_takes_the_spans_silently() -> None:
    done, took = _run_script(SPANS_SCRIPT, TRACE_FILE=os.devnull)
    assert done.returncode == 0 and took < 5.0
    assert "trace file" not in done.stderr, done.stderr


def test_configure_again_switches_the_trace_file(tmp_path: Path, tracer_provider: TracerProvider) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    provider = TracerProvider()
    try:
        configure(tracer_provider=provider, trace_file=first)
        with session("sess_first"):
            pass
        configure(tracer_provider=provider, trace_file=second)
        with session("sess_second"):
            pass
        configure(tracer_provider=provider)  # no trace file: stop writing one
        with session("sess_none"):
            pass
        provider.shutdown()
        ids = {p.name: [_attrs(s).get("alephant.session.id") for s in _spans(p)] for p in (first, second)}
        assert ids == {"first.jsonl": ["sess_first"], "second.jsonl": ["sess_second"]}
    finally:
        provider.shutdown()
        configure(tracer_provider=tracer_provider)


EXIT_SCRIPT = r"""
import os, sys
import openai
import alephant_otel
from alephant_otel import run, session
gw = os.environ["GW"]
alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"])
client = openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)
messages = [{"role": "user", "content": "hi"}]
outside = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, stream=True)
next(iter(outside))  # a stream left open outside any session
with session("sess_exit"), run(agent_id="exiting"):
    for _ in range(3):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    inside = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, stream=True)
    next(iter(inside))  # still open when the program exits
    if os.environ["HOW"] == "exit0":
        sys.exit(0)
    raise KeyboardInterrupt
"""


@pytest.mark.parametrize("how", ["exit0", "interrupt"])
def test_an_exit_with_open_streams_exports_every_request(how: str, tmp_path: Path) -> None:
    trace_file = tmp_path / "exit.jsonl"
    # Slow chunks: the streams are really still open at the exit.
    with GatewayEmulator(chunk_delay=0.2) as gw:
        done, took = _run_script(EXIT_SCRIPT, GW=gw.url, TRACE_FILE=str(trace_file), HOW=how)
        assert len(gw.requests) == 5
    assert (done.returncode == 0) == (how == "exit0"), done.stderr[-2000:]
    assert took < 30
    spans = _spans(trace_file)
    requests = [s for s in spans if _attrs(s).get("alephant.span.kind") == "request"]
    assert len(requests) == 5
    incomplete = [s for s in requests if _attrs(s).get("alephant.response.incomplete")]
    assert len(incomplete) == 2
    scopes = [s for s in spans if _attrs(s).get("alephant.span.kind") in ("session", "run")]
    assert len(scopes) == 2
    for scope in scopes:
        attrs = _attrs(scope)
        assert attrs["alephant.total.requests"] == "4"  # the open stream inside is counted
        if how == "exit0":
            assert scope.get("status", {}).get("code") != 2, scope
            assert not scope.get("events")
        else:
            assert scope["status"]["code"] == 2  # an interrupt is not a normal exit


def test_the_emulator_records_a_chunked_request_body(gateway: GatewayEmulator) -> None:
    body = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    with httpx.Client() as client:
        client.post(gateway.url + "/v1/chat/completions", content=chunks())
        client.post(gateway.url + "/v1/chat/completions", content=body)
    assert [r.body for r in gateway.requests] == [body, body]
    assert gateway.requests[0].json == json.loads(body)


@pytest.mark.parametrize(
    ("configured", "requested"),
    [("[::1]", "[0:0:0:0:0:0:0:1]"), ("[0:0:0:0:0:0:0:1]", "[::1]"), ("[::1]", "[::1]")],
)
def test_an_ipv6_gateway_matches_however_it_is_written(
    configured: str, requested: str, tracer_provider: TracerProvider
) -> None:
    try:
        server = GatewayEmulator(host="::1")
    except OSError:  # pragma: no cover - a host without IPv6 loopback
        pytest.skip("no IPv6 loopback here")
    with server as gw:
        port = gw.url.rsplit(":", 1)[1]
        configure(gateway_url=f"http://{configured}:{port}", tracer_provider=tracer_provider)
        with httpx.Client() as client, session("sess_v6"):
            client.get(f"http://{requested}:{port}/v1/models")
        (req,) = gw.requests
        assert req.headers.get("alephant-session-id") == "sess_v6"
        assert "x-request-id" in req.headers
