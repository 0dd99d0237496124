"""opentelemetry-instrument with no code change, the disable switch, and broken configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _util import BIN, EXAMPLES, clean_env, wait_for

from alephant_otel.analytics import load_sessions
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
