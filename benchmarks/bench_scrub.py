"""Benchmark: what the export-time scrubber costs per span.

Run by hand (not by the test suite)::

    .venv/bin/python benchmarks/bench_scrub.py [--spans 20000] [--runs 5]

Scrubbing runs in the ``BatchSpanProcessor``'s export thread (the exporter
is wrapped), never on the thread of the request, so this is export-thread
CPU, not request latency. Each shape is scrubbed ``--spans`` times per run
(cycling through its spans), best of ``--runs`` (the machine's other load
only adds):

- a gateway request span as the library exports it (33 attributes: HTTP,
  GenAI usage and cost, alephant ids), nothing to scrub: the common case,
  and the span is passed on as the same object;
- the same with a response id, request id and session name new on every
  span (5,000 distinct spans, more than the memo of clean values holds):
  every such value is looked at, as in production;
- the same span with a key in ``url.full``'s query string: a scrubbed copy;
- a session span that recorded an exception whose message and stack trace
  quote an ``Authorization`` header: a scrubbed copy;
- a clean exception with a 40-line stack trace, each one new: the longest
  text the first look reads in full;
- an exception quoting a JWT and a DSN password: scrubbed by their form.

Prints a markdown table of microseconds per span, with, for scale, what the
OTLP exporter spends encoding the clean request span.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode

from alephant_otel.export._scrubexport import scrub_span

RESOURCE = Resource.create({"service.name": "bench"})
CONTEXT = SpanContext(trace_id=0x5B8AA5A2D2C872E8321CF37308D69DF2, span_id=0x051581BF3CB55C13, is_remote=False)
REQUEST_ATTRS: dict[str, str | int | float | bool | tuple[str, ...]] = {
    "http.method": "POST",
    "http.url": "https://ai.alephant.io/v1/chat/completions",
    "url.full": "https://ai.alephant.io/v1/chat/completions",
    "http.status_code": 200,
    "http.response.status_code": 200,
    "server.address": "ai.alephant.io",
    "server.port": 443,
    "network.protocol.version": "1.1",
    "http.request.method": "POST",
    "user_agent.original": "OpenAI/Python 1.99.0",
    "alephant.session.id": "sess_01JABCDEF0123456789",
    "alephant.session.name": "support ticket 8421",
    "alephant.session.path": "/support/triage",
    "alephant.agent.id": "agt_support_bot_8f3a",
    "alephant.run.id": "run_ticket_8421_001",
    "gen_ai.conversation.id": "sess_01JABCDEF0123456789",
    "gen_ai.agent.id": "agt_support_bot_8f3a",
    "alephant.span.kind": "request",
    "alephant.request.id": "req_01JABCDEF0123456789",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "openai/gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-abc123def456",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 310,
    "gen_ai.usage.cache_read.input_tokens": 0,
    "alephant.cost.usd": 0.000366,
    "alephant.cost.source": "price_table",
    "alephant.streaming": True,
    "error.type": "",
    "http.request.header.user_agent": ("OpenAI/Python 1.99.0",),
}


def _span(attrs: dict[str, object], events: list[Event] = [], status: Status | None = None) -> ReadableSpan:  # noqa: B006
    return ReadableSpan(
        name="chat openai/gpt-4o-mini",
        context=CONTEXT,
        resource=RESOURCE,
        attributes=attrs,  # type: ignore[arg-type]
        events=events,
        status=status or Status(StatusCode.UNSET),
        start_time=1,
        end_time=2,
    )


def _exception_span(message: str, lines: int = 8, salt: str = "") -> ReadableSpan:
    trace = (
        "Traceback (most recent call last):\n"
        + f'  File "app{salt}.py", line 12, in main\n' * lines
        + f"RuntimeError: {message}\n"
    )
    return _span(
        {"alephant.span.kind": "session", "alephant.session.id": "sess_1", "alephant.total.requests": 4},
        [
            Event(
                "exception",
                {"exception.type": "RuntimeError", "exception.message": message, "exception.stacktrace": trace},
            )
        ],
        Status(StatusCode.ERROR, f"RuntimeError: {message}"),
    )


#: Distinct spans per shape whose strings are each seen once: more than the scrubber's
#: memo of clean values holds (4,096), so every one is a first sight.
FRESH = 5000
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkJvYiJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def shapes() -> dict[str, list[ReadableSpan]]:
    """Each shape as a list of spans, scrubbed in turn."""
    message = "upstream refused: Authorization: Bearer sk-abcdefghijklmnop0123456789"
    return {
        "request span, nothing to scrub": [_span(REQUEST_ATTRS)],
        "request span, fresh ids (each value seen once)": [
            _span(
                {
                    **REQUEST_ATTRS,
                    "gen_ai.response.id": f"chatcmpl-{i:08d}abc123def456",
                    "alephant.request.id": f"req_01JABCDEF{i:010d}",
                    "alephant.session.name": f"support ticket {i}",
                }
            )
            for i in range(FRESH)
        ],
        "request span, key in url.full": [
            _span(
                {**REQUEST_ATTRS, "url.full": "https://ai.alephant.io/v1/chat/completions?api-version=1&api_key=s3cr3t"}
            )
        ],
        "session span with an exception": [_exception_span(message)],
        "clean exception, 40-line trace, each seen once": [
            _exception_span(f"ValueError: bad input {i}", lines=40, salt=str(i)) for i in range(FRESH)
        ],
        "exception quoting a JWT and a DSN": [
            _exception_span(f"token {JWT} rejected by postgres://app:Pa55(w0rd)@db.internal:5432/main")
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| span | µs per span (best of runs) | scrubbed copy |")
    print("|---|---:|---|")
    for label, spans in shapes().items():
        timings = []
        for _ in range(args.runs):
            batch = [spans[i % len(spans)] for i in range(args.spans)]
            started = time.perf_counter()
            for span in batch:
                out = scrub_span(span)
            timings.append((time.perf_counter() - started) / args.spans * 1e6)
        print(f"| {label} | {min(timings):.1f} | {'yes' if out is not span else 'no'} |")
    # For scale: what the OTLP exporter spends encoding the clean request span anyway.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    span = shapes()["request span, nothing to scrub"][0]
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        for _ in range(args.spans):
            encode_spans([span])
        timings.append((time.perf_counter() - started) / args.spans * 1e6)
    print(f"| for scale: OTLP protobuf encoding of the clean request span | {min(timings):.1f} | - |")


if __name__ == "__main__":
    main()
