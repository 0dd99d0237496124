"""opentelemetry-instrument with no code change, the disable switch, and broken configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _util import BIN, EXAMPLES, clean_env, wait_for

from alephant_otel.analytics import load_sessions
from alephant_otel.analytics._tracereader import iter_trace_file
from alephant_otel.testing import GatewayEmulator, OtlpReceiver

APP = str(EXAMPLES / "zero_code_app.py")


def run_instrumented(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, APP],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def otlp_env(gw: GatewayEmulator, rx: OtlpReceiver, **extra: str) -> dict[str, str]:
    return clean_env(
        ALEPHANT_GATEWAY_URL=gw.url,
        OTEL_SERVICE_NAME="zero-code-test",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
        **extra,
    )


def test_baggage_only_app_gets_headers_and_spans() -> None:
    with GatewayEmulator() as gw, OtlpReceiver() as rx:
        done = run_instrumented(otlp_env(gw, rx))
        assert done.returncode == 0, done.stderr
        (req,) = gw.requests
        assert req.headers["alephant-session-id"] == "zero-code-session"
        assert req.headers["alephant-agent-id"] == "zero-code-agent"
        assert req.headers["alephant-run-id"] == "zero-code-run"
        assert req.headers["x-request-id"].startswith("req_")
        spans = wait_for(lambda: [s for s in rx.spans if s.attributes.get("alephant.span.kind") == "request"])
        (request_span,) = spans
        assert request_span.attributes["alephant.session.id"] == "zero-code-session"
        assert request_span.attributes["gen_ai.conversation.id"] == "zero-code-session"
        assert request_span.attributes["alephant.request.id"] == req.headers["x-request-id"]
        assert request_span.attributes["gen_ai.usage.input_tokens"] > 0
        assert request_span.name == "chat openai/gpt-4o-mini"
        # No double spans: one CLIENT span per request, one app span.
        names = sorted(s.name for s in rx.spans)
        assert names == ["chat openai/gpt-4o-mini", "handle ticket"]
        assert "Attempting to instrument while already instrumented" not in done.stderr


@pytest.mark.parametrize("semconv", ["", "http", "http/dup"])
def test_http_status_reads_back_under_old_and_new_http_semconv(semconv: str, tmp_path: Path) -> None:
    # The httpx instrumentation names the status http.status_code by default and
    # http.response.status_code (or both) when opted in: the analytics read either.
    trace_file = tmp_path / "traces.jsonl"
    with GatewayEmulator() as gw:
        env = clean_env(ALEPHANT_GATEWAY_URL=gw.url, OTEL_TRACES_EXPORTER="none",
                        ALEPHANT_TRACE_FILE=str(trace_file), OTEL_SEMCONV_STABILITY_OPT_IN=semconv)
        done = run_instrumented(env)
        assert done.returncode == 0, done.stderr
        assert gw.requests[0].headers["alephant-session-id"] == "zero-code-session"
    (sess,) = load_sessions(trace_file)
    (req,) = sess.requests
    assert req.http_status == 200
    assert req.input_tokens > 0
    assert req.request_id == gw.requests[0].headers["x-request-id"]
    keys = {kv["key"] for line in trace_file.read_text().splitlines()
            for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]
            for kv in sp["attributes"]}
    assert ("http.response.status_code" in keys) == (semconv != "")
    assert ("http.status_code" in keys) == (semconv != "http")


def test_disabled_instrumentation_leaves_the_app_untouched() -> None:
    with GatewayEmulator() as gw, OtlpReceiver() as rx:
        done = run_instrumented(otlp_env(gw, rx, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="alephant"))
        assert done.returncode == 0, done.stderr
        (req,) = gw.requests
        assert not [h for h in req.headers if h.lower().startswith("alephant-") or h.lower() == "x-request-id"]
        spans = wait_for(lambda: rx.spans)
        assert spans and all("alephant.request.id" not in s.attributes for s in spans)


def test_broken_configuration_never_stops_the_app() -> None:
    with GatewayEmulator() as gw:
        env = clean_env(ALEPHANT_GATEWAY_URL="ai.alephant.io-without-scheme", OTEL_TRACES_EXPORTER="console",
                        ALEPHANT_TRACE_FILE="/proc/no/such/dir/traces.jsonl")
        app = f"import os, httpx; os.environ['X']='1'; print(httpx.get('{gw.url}/v1/models').status_code)"
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", app],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("200")
        assert "ALEPHANT_GATEWAY_URL" in done.stderr  # one clear error naming the variable
        assert "Traceback" not in done.stderr.split("ALEPHANT_GATEWAY_URL")[0]


# An app that knows nothing of exporters: one LLM call in a session, one outside any.
_LOCAL_APP = """
import os, httpx2
from alephant_otel import session
body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
with httpx2.Client() as client:
    with session("sess_local"):
        client.post(os.environ["ALEPHANT_GATEWAY_URL"] + "/v1/chat/completions", json=body)
    client.post(os.environ["ALEPHANT_GATEWAY_URL"] + "/v1/chat/completions", json=body)
print("done")
"""


def _laptop_env(home: Path, **settings: str) -> dict[str, str]:
    """A newcomer's shell: no OTel or alephant settings beyond ``settings``, nothing listening."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1", **settings}


def test_alephant_file_alone_on_a_plain_install_writes_the_default_trace_file(plain_install: Path,
                                                                              tmp_path: Path) -> None:
    # A plain `pip install alephant-otel` has no opentelemetry-distro (no configurator): the
    # entry point sets the SDK up from OTEL_TRACES_EXPORTER, and no exporter looks for a collector.
    home = tmp_path / "home"
    home.mkdir()
    with GatewayEmulator() as gw:
        env = _laptop_env(home, OTEL_TRACES_EXPORTER="alephant_file", ALEPHANT_GATEWAY_URL=gw.url)
        started = time.monotonic()
        done = subprocess.run([str(plain_install / "opentelemetry-instrument"), str(plain_install / "python"),
                               "-c", _LOCAL_APP], env=env, capture_output=True, text=True, timeout=60, check=False)
        elapsed = time.monotonic() - started
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")
    # Without a collector, OTLP exporters retried for ~10 s at exit: nothing waits here (generous for CI).
    assert elapsed < 20
    requests = _request_attrs(home / ".local" / "share" / "alephant-otel" / "traces.otlp.jsonl")
    assert [r.get("alephant.session.id") for r in requests] == ["sess_local", None]
    assert [r["alephant.request.id"] for r in requests] == [r.headers["x-request-id"] for r in gw.requests]


def test_alephant_file_with_the_distro_and_a_trace_file_setting_writes_each_span_once(tmp_path: Path) -> None:
    # The SDK configurator of opentelemetry-distro creates the exporter by name; ALEPHANT_TRACE_FILE
    # names the same file, which the instrumentor must not add a second time.
    trace_file = tmp_path / "traces.jsonl"
    with GatewayEmulator() as gw:
        env = clean_env(ALEPHANT_GATEWAY_URL=gw.url, OTEL_TRACES_EXPORTER="alephant_file",
                        ALEPHANT_TRACE_FILE=str(trace_file))
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", _LOCAL_APP],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    requests = _request_attrs(trace_file)
    assert [r.get("alephant.session.id") for r in requests] == ["sess_local", None]


def _request_attrs(path: Path) -> list[dict[str, object]]:
    found = []
    for doc in iter_trace_file(path):
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    attrs = {kv["key"]: next(iter(kv["value"].values())) for kv in span["attributes"]}
                    if attrs.get("alephant.span.kind") == "request":
                        found.append((span["startTimeUnixNano"], attrs))
    return [attrs for _, attrs in sorted(found, key=lambda item: int(item[0]))]
