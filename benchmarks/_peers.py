"""Peer-arm worker: the real ``openai`` SDK (httpx2) traced by one stack, in its own process.

Run by ``peers.py`` (``run.py --peers``) with the python of the arm's virtual
environment (``benchmarks/.venvs/<peer>``, or the project's own for the
``bare``, ``otel`` and ``alephant`` arms), so it imports nothing from the
project but ``alephant_otel`` in the arms that use it::

    python benchmarks/_peers.py ARM URL serve              # stdin protocol of _workers.py: N -> CPU per request
    python benchmarks/_peers.py ARM URL callgrind N [W]    # under valgrind: W warm-up, then N measured requests
    python benchmarks/_peers.py ARM URL records            # what one request produced, as JSON

Every arm makes the same call, ``client.chat.completions.create`` with a
two-message chat, against ``_server.py`` on loopback. Spans go through the
SDK's ``BatchSpanProcessor`` to an exporter that drops them (or, for the
``*_otlp`` arms, a real OTLP/HTTP exporter to the server's ``/v1/traces``);
the processor is flushed inside every measured window, so export work counts.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

MODEL = "openai/gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello."},
]
#: Text only the request or the response carries: an attribute or event holding it records content.
CONTENT_MARKS = ("Say hello", "How can I help")

#: Arm -> (stack, one-line description). The stack's suffixes: ``_alone`` without OTel's httpx2
#: instrumentation, ``_otlp`` with a real OTLP/HTTP exporter, ``_metrics`` with an SDK MeterProvider.
ARMS = {
    "bare": "the openai SDK (httpx2), no instrumentation",
    "otel": "+ OTel httpx2 instrumentation (SDK TracerProvider, BatchSpanProcessor, drop exporter)",
    "alephant": "+ alephant_otel.configure() (it instruments httpx2), session and run active",
    "openai_v2": "+ opentelemetry-instrumentation-openai-v2 + OTel httpx2",
    "traceloop": "+ Traceloop opentelemetry-instrumentation-openai + OTel httpx2",
    "openinference": "+ OpenInference openinference-instrumentation-openai + OTel httpx2",
    "logfire": "+ Logfire instrument_openai (send_to_logfire=False, no console) + OTel httpx2",
}


class DropExporter:
    """A span exporter that drops spans (it keeps them only while :func:`records` asks it to)."""

    def __init__(self) -> None:
        self.kept: list[Any] | None = None

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self.kept is not None:
            self.kept.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Arm:
    """One instrumented process: a client, a flush, and a way to read back what one request produced."""

    def __init__(self, arm: str, url: str, stack: ExitStack) -> None:
        self.name = arm
        self.url = url
        self.flush: Callable[[], Any] = lambda: None
        self.provider: Any = None
        base, _, extra = arm.rpartition("_")
        if extra not in ("otlp", "metrics", "alone", "content"):
            base, extra = arm, ""
        self.otlp = extra == "otlp"
        #: ``_content``: content capture on (alephant only: the peers read their own switches).
        self.content = extra == "content"
        self.metrics = extra == "metrics"
        self.alone = extra == "alone"
        if (
            base not in ARMS
            or extra not in ("", "otlp", "metrics", "alone", "content")
            or (self.content and base != "alephant")
        ):
            raise SystemExit(f"unknown arm {arm!r}")
        if base != "bare":
            getattr(self, f"_setup_{base}")(stack)
        if base not in ("bare", "alephant") and not self.alone:
            from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

            HTTPX2ClientInstrumentor().instrument(tracer_provider=self.provider)
        import openai

        self.client = openai.OpenAI(base_url=url + "/v1", api_key="sk-bench-not-a-secret", max_retries=0)
        stack.callback(self.client.close)

    # -- set-up per stack -------------------------------------------------------------

    def _exporter(self) -> Any:
        if self.otlp:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=self.url + "/v1/traces")
        return DropExporter()

    def _processor(self) -> Any:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.exporter = self._exporter()
        return BatchSpanProcessor(self.exporter)

    def _sdk_provider(self) -> Any:
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider()
        provider.add_span_processor(self._processor())
        self.provider = provider
        self.flush = provider.force_flush
        return provider

    def _meter_provider(self) -> Any:
        if not self.metrics:
            return None
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        # A real SDK provider that aggregates every measurement; read (collected) at each flush.
        self.reader = InMemoryMetricReader()
        return MeterProvider(metric_readers=[self.reader])

    def _setup_otel(self, stack: ExitStack) -> None:
        self._sdk_provider()

    def _setup_alephant(self, stack: ExitStack) -> None:
        import alephant_otel

        provider = self._sdk_provider()
        # Passed only when on: a build before content capture had no such argument (for A/B runs).
        more = {"capture_content": True} if self.content else {}
        alephant_otel.configure(
            gateway_url=self.url, tracer_provider=provider, meter_provider=self._meter_provider(), **more
        )
        stack.enter_context(alephant_otel.session(name="bench", path="/bench"))
        stack.enter_context(alephant_otel.run(agent_id="bench-agent"))

    def _setup_openai_v2(self, stack: ExitStack) -> None:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        kwargs: dict[str, Any] = {"tracer_provider": self._sdk_provider()}
        if self.metrics:
            kwargs["meter_provider"] = self._meter_provider()
        OpenAIInstrumentor().instrument(**kwargs)

    def _setup_traceloop(self, stack: ExitStack) -> None:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        kwargs: dict[str, Any] = {"tracer_provider": self._sdk_provider()}
        if self.metrics:
            kwargs["meter_provider"] = self._meter_provider()
        OpenAIInstrumentor().instrument(**kwargs)

    def _setup_openinference(self, stack: ExitStack) -> None:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=self._sdk_provider())

    def _setup_logfire(self, stack: ExitStack) -> None:
        import logfire
        from opentelemetry import trace

        logfire.configure(
            send_to_logfire=False,
            console=False,
            additional_span_processors=[self._processor()],
            inspect_arguments=False,
        )
        logfire.instrument_openai()
        self.provider = trace.get_tracer_provider()
        self.flush = logfire.force_flush

    # -- requests ---------------------------------------------------------------------

    def batch(self, n: int) -> None:
        create = self.client.chat.completions.create
        for _ in range(n):
            reply = create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
            if not reply.choices:
                raise RuntimeError("empty reply")

    def flush_all(self) -> None:
        self.flush()
        if self.metrics:
            self.reader.get_metrics_data()


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(arm: Arm) -> None:
    """The runner's protocol: ``ready`` after warm-up, then ``N`` -> client CPU and wall µs per request."""
    arm.batch(100)
    arm.flush_all()
    _reply({"ready": True})
    for raw in sys.stdin:
        line = raw.strip()
        if not line or line == "quit":
            return
        n = int(line)
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        arm.batch(n)
        arm.flush_all()
        c1, w1 = time.process_time(), time.perf_counter()
        _reply({"cpu_us": (c1 - c0) / n * 1e6, "wall_us": (w1 - w0) / n * 1e6})


def _callgrind(switch: str) -> None:
    # callgrind_control reaches this process through valgrind's gdbserver even while it waits here.
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True)


def callgrind(arm: Arm, n: int, warm: int) -> None:
    """Under ``valgrind --tool=callgrind --instr-atstart=no``: instrument only ``n`` requests and their export."""
    arm.batch(warm)
    arm.flush_all()
    gc.collect()
    _callgrind("on")
    arm.batch(n)
    arm.flush_all()
    _callgrind("off")
    _reply({"requests": n})


def _summary(spans: Sequence[Any], wire: list[str]) -> dict[str, Any]:
    """What the spans of one request hold, told the same way for every arm."""
    attrs = 0
    tokens = cost = ids = content = False
    events = 0
    for span in spans:
        items = dict(span.attributes or {})
        attrs += len(items)
        for event in span.events:
            events += 1
            items.update({f"event:{k}": v for k, v in (event.attributes or {}).items()})
        for key, value in items.items():
            low = key.lower()
            tokens = tokens or ("token" in low and isinstance(value, int) and value in (21, 9, 30))
            cost = cost or ("cost" in low and isinstance(value, float | int) and value > 0)
            ids = ids or any(m in low for m in ("session.id", "conversation.id", "run.id"))
            content = content or any(m in str(value) for m in CONTENT_MARKS)
    return {
        "spans": len(spans),
        "attributes": attrs,
        "events": events,
        "tokens": tokens,
        "cost": cost,
        "ids": ids,
        "content": content,
        "wire_headers": len(wire),
    }


def records(arm: Arm, url: str) -> None:
    """One request after a flush: its spans, summarised; and the alephant headers the server saw."""
    arm.batch(3)
    arm.flush_all()
    exporter = getattr(arm, "exporter", None)
    spans: list[Any] = []
    if isinstance(exporter, DropExporter):
        exporter.kept = spans
    arm.batch(1)
    arm.flush_all()
    with urllib.request.urlopen(url + "/last-headers", timeout=10) as r:
        names = json.loads(r.read())
    wire = [name for name in names if name.startswith("alephant-") or name == "x-request-id"]
    summary = _summary(spans, wire)
    if arm.otlp:
        summary["exported_by"] = "otlp"
    summary["span_names"] = [s.name for s in spans]
    summary["stack"] = _stack()
    if os.environ.get("BENCH_RECORDS_VERBOSE"):
        summary["detail"] = [{"name": s.name, "attributes": dict(s.attributes or {})} for s in spans]
    _reply(summary)


#: What every arm must run at the same versions: the client and SDK being measured.
STACK = ("openai", "httpx2", "opentelemetry-sdk", "opentelemetry-instrumentation-httpx")


def _stack() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in STACK:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "-"
    return out


def main(argv: Sequence[str]) -> None:
    arm_name, url, mode = argv[:3]
    with ExitStack() as stack:
        arm = Arm(arm_name, url, stack)
        if mode == "serve":
            serve(arm)
        elif mode == "callgrind":
            callgrind(arm, int(argv[3]), int(argv[4]) if len(argv) > 4 else 50)
        elif mode == "records":
            records(arm, url)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    if arm.provider is not None and hasattr(arm.provider, "shutdown"):
        arm.provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
