"""The wire and span tests again, with every fast path switched off (``ALEPHANT_NO_FAST_PATHS=1``).

Four steps of the per-request path go around other libraries' public API
(``_fastpaths.py``). Each falls back to the public API when its probe or check
fails; this proves that fallback by running the header, span, span attribute,
metrics and scrub-reading tests in a fresh interpreter with the switch set (it
is read once, at import). The tests that assert a fast path is taken are left out
of that run (``-k "not fast"``): their public-API variants run instead. So is
the 500-task stress test, whose subject is context isolation, not the fast
paths, and which is the slowest of these files by far on a busy machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIRE_AND_SPAN_TESTS = (
    "tests/test_headers.py",
    "tests/test_spans.py",
    "tests/test_span_attrs.py",
    "tests/test_metrics.py",
    "tests/test_scrub_reading.py",
)


def _env_off() -> dict[str, str]:
    env = dict(os.environ)
    env["ALEPHANT_NO_FAST_PATHS"] = "1"
    return env


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_switch_turns_every_fast_path_off() -> None:
    code = textwrap.dedent(
        f"""
        import httpx, httpx2
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import alephant_otel
        from alephant_otel import _fastpaths
        from alephant_otel.wire import _attempt
        from alephant_otel.record import _spanattrs

        assert _fastpaths.ENABLED is False
        assert not _attempt._has_list_layout(httpx.Headers) and not _attempt._has_list_layout(httpx2.Headers)
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        assert _spanattrs._direct[type(provider.get_tracer("t").start_span("s"))] is False
        url = "http://127.0.0.1:{_closed_port()}"
        alephant_otel.configure(gateway_url=url, tracer_provider=provider)
        with alephant_otel.session("sess_off"), httpx2.Client() as client:
            try:
                client.post(url + "/v1/chat/completions", json={{"model": "m"}})
            except httpx2.ConnectError:
                pass
        (span,) = [s for s in exporter.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]
        assert span.attributes["alephant.session.id"] == "sess_off"
        # No stand-in for span.end: the refused request is not annotated by this package.
        assert "error.type" not in span.attributes, dict(span.attributes)
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env_off(), capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_wire_and_span_tests_pass_with_every_fast_path_off() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not fast and not 500_concurrent",
            *WIRE_AND_SPAN_TESTS,
        ],
        cwd=ROOT,
        env=_env_off(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tail = proc.stdout[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail, tail
