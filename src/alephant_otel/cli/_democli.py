"""``alephant-otel demo``: its parser and what it prints around :func:`~alephant_otel.cli._demo.run_demo`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from alephant_otel import _names as n

__all__ = ["register_demo"]


def _cmd_demo(args: Any) -> int:
    from rich.console import Console

    # The demo brings the SDK, the instrumentation and the emulator: imported when it runs,
    # not whenever the command line starts.
    from alephant_otel.cli import _demo
    from alephant_otel.cli._demo import run_demo
    from alephant_otel.cli._errors import CliError
    from alephant_otel.cli._sessionsargs import run_sessions
    from alephant_otel.export._tracepath import demo_trace_file

    out = Console(highlight=False, soft_wrap=True)
    trace_file = Path(args.trace_file).expanduser().absolute() if args.trace_file else demo_trace_file()
    _demo._prepare(trace_file, fresh=not args.trace_file)
    # The demo's spans go to its own file only, never to the trace file the user's apps write.
    os.environ.pop(n.ENV_TRACE_FILE, None)
    where = "the local gateway emulator" if not os.environ.get(n.ENV_VIRTUAL_KEY) else "the Alephant gateway"
    out.print(f"[bold]Running a support-triage workflow through {_demo._client_class().name} against {where}...[/]")
    try:
        result = run_demo(trace_file)
    except Exception as exc:
        raise CliError(f"the demo failed: {type(exc).__name__}: {exc}") from None
    if result.unwritten:
        raise CliError(f"could not write {result.unwritten} span(s) to the demo trace file {trace_file} (disk full?)")
    fresh = "" if args.trace_file else " (the demo's own file, new each run: your traces are not touched)"
    out.print(f"gateway: {result.gateway_url}   trace file: {result.trace_file}{fresh}\n", markup=False)
    source = ["--source", str(trace_file)]
    status = run_sessions(["list", "--limit", "10", *source])
    if status == 0 and result.session_ids:
        out.print()
        status = run_sessions(["show", result.session_ids[0], *source])
    out.print(
        f"\ndemo totals (counted in-process): requests={result.requests} retries={result.retries} "
        f"intercepted={result.intercepted} input_tokens={result.input_tokens} "
        f"output_tokens={result.output_tokens} cost_usd={result.cost_usd:.8f}",
        markup=False,
    )
    quoted = shlex.quote(str(trace_file))
    out.print(
        f"\nnext: alephant-otel ui --source {quoted}   (the web view: sessions, charts, waterfalls)\n"
        f"      alephant-otel sessions vitals --source {quoted}   (cost by agent and path, outliers)",
        markup=False,
    )
    return status


def register_demo(subparsers: Any) -> None:
    """Add ``alephant-otel demo`` to the CLI."""
    p = subparsers.add_parser(
        "demo",
        help="run a traced multi-agent workflow against a local gateway emulator and show its sessions",
        description="Run a support-triage workflow (sessions, nested and parallel runs, a retry, an "
        "interception, a streamed reply) through the openai SDK (or httpx2 when openai is not installed), "
        "traced, against a local gateway emulator (or the real gateway when ALEPHANT_GATEWAY_URL and "
        "ALEPHANT_VIRTUAL_KEY are set), then print the session list and one session tree read back from "
        "the trace file.",
    )
    p.add_argument(
        "--trace-file",
        help="append the demo's spans to this file (default: the demo's own file next to the default "
        "trace file, emptied each run; ALEPHANT_TRACE_FILE is not used, so your own traces never get "
        "the demo's sessions)",
    )
    p.set_defaults(handler=_cmd_demo)
