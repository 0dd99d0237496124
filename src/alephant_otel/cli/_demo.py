"""``alephant-otel demo``: the whole product in one command.

Runs a support-triage workflow (several sessions, agents with nested runs,
parallel async runs, one retry, one policy interception, one streamed reply)
through the real ``openai`` SDK when it is installed (else as plain
OpenAI-compatible HTTP with ``httpx2``, which this package depends on),
traced by this package, against the local gateway emulator, or against the
real gateway when ``ALEPHANT_GATEWAY_URL`` and ``ALEPHANT_VIRTUAL_KEY`` are
set. It writes its own trace file (new each run, next to the default one, so
a user's own traces are never mixed with the demo's) and returns the totals
the process itself counted, which the CLI prints next to what it reads back
from the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import _names as n
from alephant_otel.context._context import run, session
from alephant_otel.setup._setup import configure

__all__ = ["DemoResult", "run_demo"]

MODEL = "openai/gpt-4o-mini"
CASES = (
    ("Refund for order 1042 has not arrived", "/support/refund"),
    ("Cannot log in after password reset", "/support/account"),
    ("Please share the CEO's home address", "/support/escalation"),
)


@dataclass
class DemoResult:
    """What the demo did, counted in-process from the spans it produced."""

    trace_file: Path
    gateway_url: str
    emulated: bool
    session_ids: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    intercepted: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: Which client made the calls.
    client: str = ""
    #: Spans that could not be written to the trace file.
    unwritten: int = 0

    def add(self, span: ReadableSpan) -> None:
        """Count one exported request span."""
        a = span.attributes or {}
        if a.get(n.ATTR_SPAN_KIND) != n.SPAN_KIND_REQUEST:
            return
        self.requests += 1
        self.retries += int(bool(a.get(n.ATTR_RETRY_ATTEMPT)))
        self.intercepted += int(bool(a.get(n.ATTR_INTERCEPTED)))
        self.input_tokens += int(a.get(n.GEN_AI_USAGE_INPUT_TOKENS, 0) or 0)  # type: ignore[arg-type]
        self.output_tokens += int(a.get(n.GEN_AI_USAGE_OUTPUT_TOKENS, 0) or 0)  # type: ignore[arg-type]
        self.cost_usd += float(a.get(n.ATTR_COST_USD, 0.0) or 0.0)  # type: ignore[arg-type]


@contextlib.contextmanager
def _gateway() -> Iterator[tuple[str, str, Any]]:
    url, key = os.environ.get(n.ENV_GATEWAY_URL), os.environ.get(n.ENV_VIRTUAL_KEY)
    if url and key:
        yield url.split(",")[0].strip().rstrip("/"), key, None
        return
    from alephant_otel.testing import Fault, GatewayEmulator

    with GatewayEmulator(latency=0.005) as emu:
        # One rate limit (the SDK retries it) and one policy refusal, as a real day would have.
        emu.add_fault(Fault.status(429, retry_after=0.05), times=1, path="/v1/embeddings")
        emu.add_fault(
            Fault.policy("Request for personal data of an individual (PII guardrail)", code="pii_guardrail"),
            times=1,
            path="/v1/responses",
        )
        yield emu.url, "sk-demo-local", emu


EMBEDDING_MODEL = "openai/text-embedding-3-small"
#: The retry counter the OpenAI and Anthropic SDKs send, which the hook reads (0: first attempt).
RETRY_HEADER = n.HEADER_STAINLESS_RETRY
RETRIES = 2
#: Per call: a gateway that does not answer ends the demo with one line, not a wait of minutes.
TIMEOUT_S = 30.0


class _SdkClient:
    """The workflow's calls through the real ``openai`` SDK (when it is installed)."""

    name = "the openai SDK"

    def __init__(self, base_url: str, api_key: str) -> None:
        import openai

        self._errors = openai
        self._client = openai.AsyncOpenAI(
            base_url=base_url + "/v1", api_key=api_key, max_retries=RETRIES, timeout=TIMEOUT_S
        )

    async def close(self) -> None:
        await self._client.close()

    async def chat(self, prompt: str) -> None:
        await self._client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])

    async def embed(self, text: str) -> None:
        await self._client.embeddings.create(model=EMBEDDING_MODEL, input=text)

    async def stream(self, prompt: str) -> None:
        stream = await self._client.chat.completions.create(
            model=MODEL,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": prompt}],
        )
        async for _ in stream:
            pass

    async def respond(self, text: str) -> None:
        """A Responses call, which the gateway's policy may refuse."""
        with contextlib.suppress(self._errors.PermissionDeniedError):
            await self._client.responses.create(model=MODEL, input=text)


class _HttpClient:
    """The same calls as plain OpenAI-compatible HTTP with ``httpx2`` (a dependency of this package).

    A plain ``pip install alephant-otel`` has no ``openai``: the demo must
    not need it. Retries follow the SDKs: a 429 is retried after its
    ``retry-after``, and each attempt says its number in the SDKs' header.
    """

    name = "httpx2 (install openai to see it through the openai SDK)"

    def __init__(self, base_url: str, api_key: str) -> None:
        import httpx2

        self._client = httpx2.AsyncClient(
            base_url=base_url, headers={"authorization": f"Bearer {api_key}"}, timeout=TIMEOUT_S
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any], *, refusable: bool = False) -> None:
        for attempt in range(RETRIES + 1):
            response = await self._client.post(path, json=body, headers={RETRY_HEADER: str(attempt)})
            if response.status_code == 429 and attempt < RETRIES:
                await asyncio.sleep(_retry_after(response.headers.get("retry-after")))
                continue
            if not (refusable and response.status_code == 403):
                response.raise_for_status()
            return

    async def chat(self, prompt: str) -> None:
        await self._post("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": prompt}]})

    async def embed(self, text: str) -> None:
        await self._post("/v1/embeddings", {"model": EMBEDDING_MODEL, "input": text})

    async def stream(self, prompt: str) -> None:
        body = {
            "model": MODEL,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": prompt}],
        }
        async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            async for _ in response.aiter_bytes():
                pass

    async def respond(self, text: str) -> None:
        """A Responses call, which the gateway's policy may refuse (403)."""
        await self._post("/v1/responses", {"model": MODEL, "input": text}, refusable=True)


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or "0.5"), 0.0), 5.0)
    except ValueError:
        return 0.5


def _client_class() -> type[_SdkClient] | type[_HttpClient]:
    try:
        import openai  # noqa: F401
    except ImportError:
        return _HttpClient
    return _SdkClient


async def _workflow(client: _SdkClient | _HttpClient, result: DemoResult) -> None:
    try:
        for title, path in CASES:
            with session(name=title, path=path) as case, run(agent_id="triage"):
                result.session_ids.append(case.session_id or "")
                await client.chat(f"Classify this ticket: {title}")
                with run(agent_id="kb-search"):
                    await client.embed(title)

                async def research(topic: str, ticket: str) -> None:
                    with run(agent_id="researcher"):
                        await client.chat(f"{topic} for: {ticket}")

                # Parallel sub-agents: each task its own run, no ids mixed.
                await asyncio.gather(research("Order history", title), research("Known incidents", title))
                with run(agent_id="responder"):
                    if path == "/support/escalation":
                        await client.respond(title)
                    else:
                        await client.stream(f"Write the reply for: {title}")
    finally:
        await client.close()


class _Counted(SpanExporter):
    """An exporter that counts the spans its inner exporter failed to write."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def run_demo(trace_file: Path) -> DemoResult:
    """Run the demo workflow, writing spans to ``trace_file`` (and nowhere else)."""
    from alephant_otel.export._tracefile import TraceFileExporter

    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    file = _Counted(TraceFileExporter(trace_file))
    provider.add_span_processor(BatchSpanProcessor(file))
    client_class = _client_class()
    # The exporter would log a write failure as it happens; the command says it once, at the end.
    file_log = logging.getLogger("alephant_otel.export._tracefile")
    was_disabled, file_log.disabled = file_log.disabled, True
    try:
        with _gateway() as (url, key, emu):
            configure(gateway_url=url, tracer_provider=provider)
            result = DemoResult(trace_file=trace_file, gateway_url=url, emulated=emu is not None)
            result.client = client_class.name
            asyncio.run(_workflow(client_class(url, key), result))
        provider.force_flush()
        for span in memory.get_finished_spans():
            result.add(span)
        provider.shutdown()
    finally:
        file_log.disabled = was_disabled
    result.unwritten = file.failed
    return result


def _prepare(path: Path, *, fresh: bool) -> None:
    """Fail now, in one line, if ``path`` cannot be the demo's trace file; empty it when ``fresh``.

    The demo reads the file back: a directory, a device such as ``/dev/full``
    (endless zeros) or a FIFO would fail late or never end.
    """
    from alephant_otel.cli._errors import CliError

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise CliError(f"cannot write the demo trace file {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise CliError(f"cannot write the demo trace file {path}: it is {kind}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o600))
    except OSError as exc:
        raise CliError(f"cannot write the demo trace file {path}: {exc.strerror or exc}") from None
