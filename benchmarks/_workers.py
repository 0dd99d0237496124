"""Benchmark worker processes: one process per variant, driven over stdin/stdout.

Instrumentation is process-global, so each variant (bare httpx, OTel httpx
instrumentation, + alephant-otel, ...) lives in its own process. The runner
starts every variant's worker once, then sends each a batch in turn (``N`` on
stdin), round after round, so that the variants are interleaved in time and
share the machine's noise; each batch answers with one JSON line.

Run by the runner as ``python benchmarks/_workers.py BENCH VARIANT URL [LIB]``.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

CHAT_PATH = "/v1/chat/completions"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello."},
]
BODY = json.dumps({"model": "openai/gpt-4o-mini", "messages": MESSAGES}).encode()
STREAM_BODY = json.dumps(
    {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-secret"}

#: Variants of the per-request and streaming benchmarks.
VARIANTS = {
    "bare": "bare client, no instrumentation",
    "otel": "+ OTel httpx instrumentation (SDK provider, BatchSpanProcessor, drop exporter)",
    "otel_bsp": "otel + ids set as baggage by hand + BaggageSpanProcessor(ALLOW_ALL) (public equivalent)",
    "alephant": "otel + alephant_otel.configure(), session+run active",
    "alephant_bsp": "alephant + BaggageSpanProcessor(ALLOW_ALL)",
    "alephant_nowatch": "alephant without the body watcher (requests recorded at headers, bodies unread)",
}


class DropExporter:
    """A span exporter that drops everything (the SDK's pipeline still runs)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _provider(with_bsp: bool) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    if with_bsp:
        from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor

        provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))  # type: ignore[arg-type]
    return provider


def _hand_baggage(stack: ExitStack) -> None:
    """The same ids as alephant's session+run, set as plain OTel baggage."""
    from opentelemetry import baggage
    from opentelemetry import context as otel_context

    ctx = otel_context.get_current()
    for key, value in (
        ("alephant.session.id", "sess_01BENCH0000000000000000000"),
        ("alephant.session.name", "bench"),
        ("alephant.agent.id", "bench-agent"),
        ("alephant.run.id", "run_01BENCH0000000000000000000"),
    ):
        ctx = baggage.set_baggage(key, value, ctx)
    token = otel_context.attach(ctx)
    stack.callback(otel_context.detach, token)


def setup(variant: str, url: str, lib: str, stack: ExitStack) -> tuple[Any, Callable[[], None]]:
    """Instrument this process for ``variant``; return (client module, flush).

    ``lib`` "aiohttp" is httpx2 with the aiohttp transport (what the SDKs'
    ``DefaultAioHttpClient`` uses): its clients are made by :func:`aiohttp_client`.
    """
    client_mod: Any
    if lib in ("httpx2", "aiohttp"):
        import httpx2 as client_mod
    else:
        import httpx as client_mod
    if variant == "bare":
        return client_mod, lambda: None
    provider = _provider(with_bsp=variant.endswith("_bsp"))
    if variant.startswith("alephant"):
        import alephant_otel

        if variant == "alephant_nowatch":
            from alephant_otel.wire import _response

            # Benchmark only: the hook declines to watch, as for a stream class it
            # cannot re-class, and records the request with nothing parsed.
            _response.watch_stream = lambda stream, watcher: False

        alephant_otel.configure(gateway_url=url, tracer_provider=provider)
        stack.enter_context(alephant_otel.session(name="bench", path="/bench"))
        stack.enter_context(alephant_otel.run(agent_id="bench-agent"))
    else:
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor

        inst = HTTPX2ClientInstrumentor() if lib in ("httpx2", "aiohttp") else HTTPXClientInstrumentor()
        inst.instrument(tracer_provider=provider)
        if variant == "otel_bsp":
            _hand_baggage(stack)
    return client_mod, provider.force_flush


def _commands() -> Iterator[int]:
    for raw in sys.stdin:
        line = raw.strip()
        if not line or line == "quit":
            return
        yield int(line)


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _timed_batches(batch: Callable[[int], None], flush: Callable[[], None]) -> None:
    """Warm up, then answer each command N with client CPU and wall time per request of ``batch(N)``."""
    batch(200)  # warm up: connection, caches, price lookup
    flush()
    _reply({"ready": True})
    for n in _commands():
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        batch(n)
        flush()
        c1, w1 = time.process_time(), time.perf_counter()
        _reply({"cpu_us": (c1 - c0) / n * 1e6, "wall_us": (w1 - w0) / n * 1e6})


def aiohttp_client(variant: str, url: str, provider: Any) -> Any:
    """An httpx2 client on the aiohttp transport, traced as ``variant`` traces it.

    OpenTelemetry's global httpx2 instrumentation does not wrap that transport,
    so the ``otel`` variants trace the client with ``instrument_client`` (what
    OpenTelemetry offers for it); alephant-otel's configure() covers it by itself.
    """
    from httpx_aiohttp.httpx2 import Httpx2AiohttpClient

    client = Httpx2AiohttpClient(base_url=url)
    if variant.startswith("otel"):
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

        HTTPX2ClientInstrumentor.instrument_client(client, tracer_provider=provider)
    return client


def per_request_async(variant: str, url: str) -> None:
    """:func:`per_request` through an aiohttp-backed httpx2 client, on an asyncio loop."""
    import asyncio

    with ExitStack() as stack:
        _, flush = setup(variant, url, "aiohttp", stack)
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        client = aiohttp_client(variant, url, getattr(flush, "__self__", None))  # flush: the provider's
        stack.callback(lambda: loop.run_until_complete(client.aclose()))

        async def batch(n: int) -> None:
            for _ in range(n):
                r = await client.post(CHAT_PATH, content=BODY, headers=HEADERS)
                await r.aread()
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}")

        _timed_batches(lambda n: loop.run_until_complete(batch(n)), flush)


def per_request(variant: str, url: str, lib: str) -> None:
    """Answer each batch of N requests with client CPU and wall time per request."""
    if lib == "aiohttp":
        per_request_async(variant, url)
        return
    with ExitStack() as stack:
        mod, flush = setup(variant, url, lib, stack)
        client = stack.enter_context(mod.Client(base_url=url))

        def batch(n: int) -> None:
            for _ in range(n):
                r = client.post(CHAT_PATH, content=BODY, headers=HEADERS)
                r.read()
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}")

        _timed_batches(batch, flush)


def streaming(variant: str, url: str, lib: str, chunks: int = 500) -> None:
    """Answer each batch of N streams with medians of first/last chunk times."""
    with ExitStack() as stack:
        mod, flush = setup(variant, url, lib, stack)
        client = stack.enter_context(mod.Client(base_url=url))
        headers = {**HEADERS, "x-bench-chunks": str(chunks)}

        def one() -> tuple[float, float, int]:
            t0 = time.perf_counter()
            first = 0.0
            size = 0
            with client.stream("POST", CHAT_PATH, content=STREAM_BODY, headers=headers) as r:
                for chunk in r.iter_bytes():
                    if not size:
                        first = time.perf_counter()
                    size += len(chunk)
            return first - t0, time.perf_counter() - t0, size

        for _ in range(10):
            one()
        flush()
        _reply({"ready": True})
        for n in _commands():
            gc.collect()
            c0 = time.process_time()
            results = [one() for _ in range(n)]
            flush()
            c1 = time.process_time()
            _reply(
                {
                    "first_ms": statistics.median(r[0] for r in results) * 1e3,
                    "last_ms": statistics.median(r[1] for r in results) * 1e3,
                    "cpu_ms": (c1 - c0) / n * 1e3,
                    "bytes": results[-1][2],
                }
            )


def span_pipeline(variant: str, url: str, lib: str) -> None:
    """Spans/s through the SDK: no extra processor, AlephantSpanProcessor, or BaggageSpanProcessor.

    All three providers live in this one process and are interleaved per
    batch; a session and run are active (baggage set), as in real use.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    import alephant_otel
    from alephant_otel import AlephantSpanProcessor

    def make(extra: Any) -> Any:
        provider = TracerProvider()
        if extra is not None:
            provider.add_span_processor(extra)
        provider.add_span_processor(BatchSpanProcessor(DropExporter()))  # type: ignore[arg-type]
        return provider

    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor

    providers = {
        "sdk": make(None),
        "alephant": make(AlephantSpanProcessor()),
        "baggage": make(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS)),
    }
    tracers = {name: p.get_tracer("bench") for name, p in providers.items()}
    # Attributes like those an HTTP client span starts with.
    attrs = {
        "http.request.method": "POST",
        "url.full": "http://127.0.0.1:8080/v1/chat/completions",
        "server.address": "127.0.0.1",
        "server.port": 8080,
        "network.protocol.version": "1.1",
    }
    with alephant_otel.session(name="bench", path="/bench"), alephant_otel.run(agent_id="bench-agent"):

        def batch(name: str, n: int) -> float:
            tracer = tracers[name]
            gc.collect()
            c0 = time.process_time()
            for _ in range(n):
                tracer.start_span("POST", kind=SpanKind.CLIENT, attributes=attrs).end()
            providers[name].force_flush()
            return n / (time.process_time() - c0)

        for name in tracers:
            batch(name, 2000)
        _reply({"ready": True})
        for n in _commands():
            _reply({name: batch(name, n) for name in tracers})


def memory(variant: str, url: str, lib: str) -> None:
    """``N`` sessions x 10 real requests; RSS at checkpoints. One command only."""
    import alephant_otel

    with ExitStack() as stack:
        mod, flush = setup(variant, url, lib, stack)
        stack.close()  # setup opened a session/run for the other benchmarks; not wanted here
        client = mod.Client(base_url=url)

        def sessions(count: int) -> None:
            for i in range(count):
                with alephant_otel.session(name=f"bench {i}", path="/bench"), alephant_otel.run(agent_id="agent"):
                    for _ in range(10):
                        client.post(CHAT_PATH, content=BODY, headers=HEADERS).read()

        sessions(1000)  # warm up: every lazy cache and allocator arena in place
        flush()
        gc.collect()
        base = rss_bytes()
        _reply({"ready": True})
        for n in _commands():
            t0 = time.perf_counter()
            points = []
            done = 0
            for step in (n // 4, n // 4, n // 4, n - 3 * (n // 4)):
                sessions(step)
                done += step
                flush()
                gc.collect()
                points.append((done, (rss_bytes() - base) / 2**20))
            client.close()
            _reply({"sessions": n, "points": points, "seconds": time.perf_counter() - t0, "base_mb": base / 2**20})


BENCHES = {"per_request": per_request, "streaming": streaming, "span_pipeline": span_pipeline, "memory": memory}

if __name__ == "__main__":
    bench, variant, url = sys.argv[1:4]
    lib = sys.argv[4] if len(sys.argv) > 4 else "httpx"
    BENCHES[bench](variant, url, lib)
