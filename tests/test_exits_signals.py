"""Issue 36, exits: SIGTERM with the default handler, fork children, a hanging OTLP endpoint.

Each case runs a real Python process against the gateway emulator (streaming
slowly where a stream must still be open) and reads what reached the trace file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util import ROOT, clean_env

from alephant_otel.setup._exits import EXIT_FLUSH_S, SHUTDOWN_S
from alephant_otel.testing import GatewayEmulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        s
        for line in path.read_bytes().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values()), None) for a in span.get("attributes", ())}


def _kinds(spans: list[dict[str, Any]]) -> collections.Counter[str]:
    return collections.Counter(str(_attrs(s).get("alephant.span.kind")) for s in spans)


def _start(script: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=clean_env(**{"OTEL_TRACES_EXPORTER": "none", **env}), cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for_line(proc: subprocess.Popen[str], wanted: str, timeout: float = 60.0) -> list[str]:
    """The child's stdout lines up to and including ``wanted`` (fails if it exits or takes too long)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.1):
                continue
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            if line.strip() == wanted:
                return seen
    proc.kill()
    _, err = proc.communicate(timeout=30)
    raise AssertionError(f"no {wanted!r} from the child (saw {seen}); stderr: {err[-3000:]}")


@contextlib.contextmanager
def hanging_endpoint() -> Iterator[str]:
    """A loopback TCP server that accepts every connection, reads, and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


# --- SIGTERM -------------------------------------------------------------------------------

STREAM_SCRIPT = r"""
import os, signal, sys
import openai
import alephant_otel
from alephant_otel import run, session

if os.environ.get("APP_HANDLER"):
    def app_handler(signum, frame):
        print("app handler", flush=True)
        sys.exit(7)
    signal.signal(signal.SIGTERM, app_handler)
gw = os.environ["GW"]
alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"])
if os.environ.get("SWITCH") == "keyword":  # configure() again takes the handler back out
    alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"], sigterm_flush=False)
handler = signal.getsignal(signal.SIGTERM)
print("handler", "default" if handler == signal.SIG_DFL else getattr(handler, "__name__", handler), flush=True)
client = openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)
messages = [{"role": "user", "content": "one two three four five six seven eight"}]
with session("sess_term"), run(agent_id="terminated"):
    for _ in range(3):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, stream=True)
    chunks = iter(stream)
    next(chunks)
    print("streaming", flush=True)
    for _ in chunks:
        pass
print("stream ended before the signal", flush=True)
"""


def _terminate_mid_stream(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], float, list[str]]:
    """Run STREAM_SCRIPT, SIGTERM it while its stream is open; the outcome and the time the exit took."""
    trace_file = tmp_path / "term.jsonl"
    # 0.5 s between chunks: the stream of ~20 words is open for ~10 s, far past the signal.
    with GatewayEmulator(chunk_delay=0.5) as gw:
        proc = _start(STREAM_SCRIPT, GW=gw.url, TRACE_FILE=str(trace_file), **env)
        lines = _wait_for_line(proc, "streaming")
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "\n".join(lines) + "\n" + out, err)
    return done, took, [line for line in lines if line.startswith("handler ")]


@pytest.mark.parametrize("otlp", ["no OTLP", "a hanging OTLP endpoint"])
def test_sigterm_mid_stream_flushes_every_request_and_keeps_the_signal(otlp: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if otlp != "no OTLP":
            endpoint = stack.enter_context(hanging_endpoint())
            env = {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            }
        done, took, handler = _terminate_mid_stream(tmp_path, **env)
    assert handler == ["handler _on_sigterm"], done.stdout
    assert done.returncode == -signal.SIGTERM, (done.returncode, done.stderr[-3000:])
    assert "stream ended" not in done.stdout
    # The flush is bounded at EXIT_FLUSH_S; the rest is the signal's round trip on a busy machine.
    assert took < EXIT_FLUSH_S + 1.5, f"SIGTERM to exit took {took:.2f} s"
    print(f"\n[exits] SIGTERM with {otlp}: exit {took:.2f} s after the signal")
    requests = [s for s in _spans(tmp_path / "term.jsonl") if _attrs(s).get("alephant.span.kind") == "request"]
    assert len(requests) == 4, done.stderr[-3000:]
    incomplete = [s for s in requests if _attrs(s).get("alephant.response.incomplete")]
    assert len(incomplete) == 1
    assert _attrs(incomplete[0])["alephant.session.id"] == "sess_term"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def test_sigterm_leaves_the_apps_own_handler_alone(tmp_path: Path) -> None:
    done, _, handler = _terminate_mid_stream(tmp_path, APP_HANDLER="1")
    assert handler == ["handler app_handler"]
    assert "app handler" in done.stdout
    assert done.returncode == 7  # the app's handler decided the exit


@pytest.mark.parametrize("switch", ["environment", "keyword"])
def test_the_sigterm_flush_can_be_turned_off(switch: str, tmp_path: Path) -> None:
    env = {"ALEPHANT_SIGTERM_FLUSH": "false"} if switch == "environment" else {"SWITCH": "keyword"}
    done, _, handler = _terminate_mid_stream(tmp_path, **env)
    assert handler == ["handler default"]
    assert done.returncode == -signal.SIGTERM
    # Nothing flushed the queue: the open stream never reached the file.
    incomplete = [s for s in _spans(tmp_path / "term.jsonl") if _attrs(s).get("alephant.response.incomplete")]
    assert incomplete == []


ZERO_CODE_SCRIPT = r"""
import signal
from opentelemetry import trace
from alephant_otel.setup import _distro
from alephant_otel.setup._exits import BoundedSpanProcessors

_distro.pre_instrument()  # what opentelemetry-instrument calls first, with no distro installed
handler = signal.getsignal(signal.SIGTERM)
print("default" if handler == signal.SIG_DFL else getattr(handler, "__name__", handler))
print(type(trace.get_tracer_provider()._active_span_processor) is BoundedSpanProcessors)
"""


@pytest.mark.parametrize("switch", ["", "false"])
def test_zero_code_without_a_distro_installs_the_handler_unless_switched_off(switch: str, tmp_path: Path) -> None:
    proc = _start(
        ZERO_CODE_SCRIPT, OTEL_TRACES_EXPORTER="alephant_file", ALEPHANT_TRACE_FILE=str(tmp_path / "zero.jsonl"),
        ALEPHANT_SIGTERM_FLUSH=switch,
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    expected = "default" if switch == "false" else "_on_sigterm"
    assert out.split() == [expected, "True"]


# --- fork -------------------------------------------------------------------------------------

CHILDREN_SCRIPT = r"""
import multiprocessing, os
import httpx
import alephant_otel
from alephant_otel import run, session

gw = os.environ["GW"]
alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"])

def work(i):
    with httpx.Client() as client, session(f"sess_child_{i}"), run(agent_id="worker"):
        for _ in range(25):
            client.get(gw + "/v1/models")
    return i

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    if os.environ["HOW"] == "process":
        children = [ctx.Process(target=work, args=(i,)) for i in range(3)]
        for child in children:
            child.start()
        for child in children:
            child.join()
        assert [c.exitcode for c in children] == [0, 0, 0]
    else:
        # The context manager ends with terminate(): each worker gets SIGTERM.
        with ctx.Pool(3) as pool:
            assert sorted(pool.map(work, range(3), chunksize=1)) == [0, 1, 2]
"""


@pytest.mark.parametrize("how", ["process", "pool"])
def test_multiprocessing_fork_children_export_their_spans(how: str, tmp_path: Path) -> None:
    trace_file = tmp_path / "children.jsonl"
    with GatewayEmulator() as gw:
        proc = _start(CHILDREN_SCRIPT, GW=gw.url, TRACE_FILE=str(trace_file), HOW=how)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert len(gw.requests) == 75
    spans = _spans(trace_file)
    kinds = _kinds(spans)
    assert kinds["request"] == 75, (kinds, err[-3000:])
    by_session = collections.Counter(
        _attrs(s)["alephant.session.id"] for s in spans if _attrs(s).get("alephant.span.kind") == "request"
    )
    assert by_session == {f"sess_child_{i}": 25 for i in range(3)}
    assert len({s["spanId"] for s in spans}) == len(spans)


FORK_IN_SESSION_SCRIPT = r"""
import multiprocessing, os, sys
import httpx
import openai
import alephant_otel
from alephant_otel import run, session

gw = os.environ["GW"]
alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"])

def work():
    with httpx.Client() as client:
        for _ in range(5):
            client.get(gw + "/v1/models")

client = openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)
with session("sess_fork"), run(agent_id="parent"):
    work()
    # A response still being read across both forks: each child's exit ends open requests.
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = iter(stream)
    next(chunks)
    child = multiprocessing.get_context("fork").Process(target=work)
    child.start()
    child.join()
    pid = os.fork()
    if pid == 0:
        work()  # then leaves the parent's session and run, and exits as the parent does
    else:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for _ in chunks:
            pass
"""


def test_a_fork_inside_a_session_exports_no_span_twice(tmp_path: Path) -> None:
    trace_file = tmp_path / "fork.jsonl"
    with GatewayEmulator(chunk_delay=0.05) as gw:
        proc = _start(FORK_IN_SESSION_SCRIPT, GW=gw.url, TRACE_FILE=str(trace_file))
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
    spans = _spans(trace_file)
    ids = collections.Counter(s["spanId"] for s in spans)
    assert [i for i, count in ids.items() if count > 1] == []
    assert _kinds(spans) == {"request": 16, "session": 1, "run": 1}
    (run_span,) = [s for s in spans if _attrs(s).get("alephant.span.kind") == "run"]
    requests = [s for s in spans if _attrs(s).get("alephant.span.kind") == "request"]
    # The children's requests are in the parent's run, in its trace: only the parent ends that run.
    assert {s["traceId"] for s in spans} == {run_span["traceId"]}
    assert {_attrs(s)["alephant.run.id"] for s in requests} == {_attrs(run_span)["alephant.run.id"]}
    assert {s.get("parentSpanId") for s in requests} == {run_span["spanId"]}
    assert _attrs(run_span)["alephant.total.requests"] == "6"  # the parent's own; children count their copies
    assert not any(_attrs(s).get("alephant.response.incomplete") for s in requests)  # the parent read it all


# --- shutdown against an endpoint that never answers -------------------------------------------

SHUTDOWN_SCRIPT = r"""
import os, time
import httpx
import alephant_otel
from alephant_otel import run, session

gw = os.environ["GW"]
provider = alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"])
with httpx.Client() as client, session("sess_shutdown"), run(agent_id="a"):
    for _ in range(20):
        client.get(gw + "/v1/models")
time.sleep(0.3)  # the batch thread is in its export now: the endpoint holds it
if os.environ["HOW"] == "shutdown()":
    started = time.monotonic()
    provider.shutdown()
    print("shutdown", time.monotonic() - started, flush=True)
print("exit", time.time(), flush=True)  # at exit, the SDK's atexit hook shuts the provider down
"""


@pytest.mark.parametrize("how", ["shutdown()", "at exit"])
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_shutdown_returns_within_the_bound_when_the_otlp_endpoint_hangs(
    protocol: str, how: str, tmp_path: Path
) -> None:
    if protocol == "grpc":
        pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    trace_file = tmp_path / "shutdown.jsonl"
    with GatewayEmulator() as gw, hanging_endpoint() as endpoint:
        proc = _start(
            SHUTDOWN_SCRIPT, GW=gw.url, TRACE_FILE=str(trace_file), OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100", HOW=how,
        )  # fmt: skip
        out, err = proc.communicate(timeout=120)
        ended = time.time()
    assert proc.returncode == 0, err[-3000:]
    fields = dict(line.split(" ", 1) for line in out.splitlines())
    exit_s = ended - float(fields["exit"])
    if how == "shutdown()":
        shutdown_s = float(fields["shutdown"])
        print(f"\n[exits] hanging OTLP ({protocol}): shutdown() {shutdown_s:.3f} s, then the exit {exit_s:.2f} s")
        assert shutdown_s < SHUTDOWN_S + 0.25
        assert exit_s < 3.0  # the interpreter's own exit: nothing of ours waits on the endpoint again
    else:
        print(f"\n[exits] hanging OTLP ({protocol}): the exit (shutdown in atexit) {exit_s:.2f} s")
        # The bound, plus the interpreter's own exit and the process's reaping on a busy machine.
        assert exit_s < SHUTDOWN_S + 2.5
    # Side by side: the trace file did not wait behind the hanging exporter.
    assert _kinds(_spans(trace_file))["request"] == 20


FORK_MID_WRITE_SCRIPT = r"""
import fcntl, os, signal, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from alephant_otel.export._tracefile import TraceFileExporter

exporter = TraceFileExporter(os.environ["TRACE_FILE"])
span = TracerProvider().get_tracer("t").start_span("child's span")
span.end()
# A batch thread is mid-write at the fork: the descriptor open, the flock held.
fd = exporter._fd = exporter._open()
fcntl.flock(fd, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    signal.alarm(10)  # a child that waits on the parent's lock dies here instead of hanging the test
    os._exit(0 if exporter.export([span]) is SpanExportResult.SUCCESS else 1)
exporter._fd = None
os.close(fd)  # the parent's write is done
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_fork_during_a_trace_file_write_leaves_the_child_no_lock(tmp_path: Path) -> None:
    trace_file = tmp_path / "mid-write.jsonl"
    proc = _start(FORK_MID_WRITE_SCRIPT, TRACE_FILE=str(trace_file))
    out, err = proc.communicate(timeout=60)
    assert out.strip() == "child 0", (out, err[-3000:])
    assert [s["name"] for s in _spans(trace_file)] == ["child's span"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", True), ("true", True), ("1", True), ("false", False), ("OFF", False), ("0", False), ("maybe", True)],
)
def test_the_sigterm_switch_reads_the_environment(raw: str, expected: bool, caplog: pytest.LogCaptureFixture) -> None:
    from alephant_otel.setup._config import resolve_settings

    assert resolve_settings(env={"ALEPHANT_SIGTERM_FLUSH": raw}).sigterm_flush is expected
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == (1 if raw == "maybe" else 0)  # a typo keeps the default, with one error
    assert resolve_settings(sigterm_flush=False, env={"ALEPHANT_SIGTERM_FLUSH": "true"}).sigterm_flush is False
    with pytest.raises(ValueError, match="sigterm_flush"):
        resolve_settings(sigterm_flush="no")  # type: ignore[arg-type]
