"""``alephant-otel demo``: the whole product in one command.

Runs a support-triage workflow (several sessions, agents with nested runs,
parallel async runs, one retry, one policy interception, one streamed reply)
through the real ``openai`` SDK, traced by this package, against the local
gateway emulator, or against the real gateway when ``ALEPHANT_GATEWAY_URL``
and ``ALEPHANT_VIRTUAL_KEY`` are set. It writes the local trace file and
returns the totals the process itself counted, which the CLI prints next to
what it reads back from the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import _names as n
from alephant_otel._context import run, session
from alephant_otel._setup import configure

__all__ = ["DemoResult", "register_demo", "run_demo"]

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


async def _workflow(base_url: str, api_key: str, result: DemoResult) -> None:
    import openai

    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=2) as client:
        for title, path in CASES:
            with session(name=title, path=path) as case, run(agent_id="triage"):
                result.session_ids.append(case.session_id or "")
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"Classify this ticket: {title}"}]
                )
                with run(agent_id="kb-search"):
                    await client.embeddings.create(model="openai/text-embedding-3-small", input=title)

                async def research(topic: str, ticket: str) -> None:
                    with run(agent_id="researcher"):
                        await client.chat.completions.create(
                            model=MODEL, messages=[{"role": "user", "content": f"{topic} for: {ticket}"}]
                        )

                # Parallel sub-agents: each task its own run, no ids mixed.
                await asyncio.gather(research("Order history", title), research("Known incidents", title))
                with run(agent_id="responder"):
                    if path == "/support/escalation":
                        with contextlib.suppress(openai.PermissionDeniedError):
                            await client.responses.create(model=MODEL, input=title)
                    else:
                        stream = await client.chat.completions.create(
                            model=MODEL,
                            stream=True,
                            stream_options={"include_usage": True},
                            messages=[{"role": "user", "content": f"Write the reply for: {title}"}],
                        )
                        async for _ in stream:
                            pass


def run_demo(trace_file: Path) -> DemoResult:
    """Run the demo workflow, writing spans to ``trace_file``."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with _gateway() as (url, key, emu):
        configure(gateway_url=url, tracer_provider=provider, trace_file=trace_file)
        result = DemoResult(trace_file=trace_file, gateway_url=url, emulated=emu is not None)
        asyncio.run(_workflow(url, key, result))
    provider.force_flush()
    for span in memory.get_finished_spans():
        result.add(span)
    provider.shutdown()
    return result


def _cmd_demo(args: Any) -> int:
    from rich.console import Console

    from alephant_otel._cli import main as cli_main
    from alephant_otel._tracefile import default_trace_file

    out = Console(highlight=False, soft_wrap=True)

    trace_file = Path(args.trace_file or os.environ.get(n.ENV_TRACE_FILE) or default_trace_file()).expanduser()
    where = "the local gateway emulator" if not os.environ.get(n.ENV_VIRTUAL_KEY) else "the Alephant gateway"
    out.print(f"[bold]Running a support-triage workflow through the openai SDK against {where}...[/]")
    result = run_demo(trace_file)
    out.print(f"gateway: {result.gateway_url}   trace file: {result.trace_file}\n", markup=False)
    source = ["--source", str(trace_file)]
    status = cli_main(["sessions", "list", "--limit", "10", *source])
    if status == 0 and result.session_ids:
        out.print()
        status = cli_main(["sessions", "show", result.session_ids[0], *source])
    out.print(
        f"\ndemo totals (counted in-process): requests={result.requests} retries={result.retries} "
        f"intercepted={result.intercepted} input_tokens={result.input_tokens} "
        f"output_tokens={result.output_tokens} cost_usd={result.cost_usd:.8f}",
        markup=False,
    )
    out.print(f"next: alephant-otel sessions vitals --source {trace_file}", markup=False)
    return status


def register_demo(subparsers: Any) -> None:
    """Add ``alephant-otel demo`` to the CLI."""
    p = subparsers.add_parser(
        "demo",
        help="run a traced multi-agent workflow against a local gateway emulator and show its sessions",
        description="Run a support-triage workflow (sessions, nested and parallel runs, a retry, an "
        "interception, a streamed reply) through the real openai SDK, traced, against a local gateway "
        "emulator (or the real gateway when ALEPHANT_GATEWAY_URL and ALEPHANT_VIRTUAL_KEY are set), then "
        "print the session list and one session tree read back from the trace file.",
    )
    p.add_argument("--trace-file", help="where to write spans (default: ALEPHANT_TRACE_FILE or the default location)")
    p.set_defaults(handler=_cmd_demo)
