"""``alephant-otel sessions show``: one session as a tree of runs, requests and tool steps (or ``--html``)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rich.tree import Tree

from alephant_otel.analytics import (
    Request,
    Run,
)
from alephant_otel.analytics._answer import show_session
from alephant_otel.analytics._render import (
    MAX_INDENT,
    STATUS_STYLE,
    console,
    duration,
    escape,
    money,
    retries,
    when,
)
from alephant_otel.analytics._report import session_notes, show_json
from alephant_otel.analytics._toolstep import ToolStep
from alephant_otel.cli._common import (
    dump_json,
    reading_bar,
    selection_of,
    warn_read,
)
from alephant_otel.cli._errors import CliError

__all__ = ["cmd_show", "share"]


# --- sessions show --------------------------------------------------------------------


def share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 and math.isfinite(whole) and math.isfinite(part) else "-"


def _request_label(r: Request, total: float) -> str:
    bits = [f"[bold]{escape(r.name or 'request')}[/]"]
    if r.request_id:
        bits.append(f"[dim]{escape(r.request_id)}[/]")
    bits.append(duration(r.latency_s))
    if r.usage_unknown:  # not 0/0 $0: that would read as a free call
        bits.append("[yellow]usage unknown[/]")
    else:
        bits.append(f"{r.input_tokens:,}/{r.output_tokens:,} tok")
        bits.append(f"{money(r.cost_usd)} ({share(r.cost_usd, total)})")
    if r.streaming:
        bits.append("[cyan]stream[/]")
    if r.incomplete:
        bits.append("[yellow]incomplete[/]")
    if r.retry_attempt:
        bits.append(f"[yellow]retry {r.retry_attempt}[/]")
    for e in r.policy_events:
        bits.append(
            f"[bold red]intercepted: {escape(e.reason)}[/]" + (f" [dim]({escape(e.code)})[/]" if e.code else "")
        )
    if r.error and not r.policy_events:
        # A 200 whose body reported the error says nothing by its status.
        status = str(r.http_status) if r.http_status is not None and r.http_status >= 400 else ""
        detail = " ".join(x for x in (status, escape(r.status_message)) if x)
        bits.append(f"[red]error {detail}[/]" if detail else "[red]error[/]")
    return "  ".join(bits)


def _tool_label(t: ToolStep, total: float) -> str:
    bits = [f"[bold yellow]tool {escape(t.name)}[/]"]
    if t.call_id:
        bits.append(f"[dim]{escape(t.call_id)}[/]")
    bits.append(duration(t.latency_s))
    if t.cost_usd:
        bits.append(f"{money(t.cost_usd)} ({share(t.cost_usd, total)})")
    if t.error:
        bits.append(f"[red]error {escape(t.status_message)}[/]" if t.status_message else "[red]error[/]")
    return "  ".join(bits)


def _label(step: Request | ToolStep, total: float) -> str:
    return _tool_label(step, total) if isinstance(step, ToolStep) else _request_label(step, total)


def _run_label(run: Run, total: float) -> str:
    who = escape(run.name or run.agent_id or "run")
    label = f"[bold magenta]{who}[/] [dim]{escape(run.run_id)}[/]"
    if not run.span_present:
        label += " [dim](no run span)[/]"
    tools = f"  {run.tool_calls} tool" if run.tool_calls else ""
    return (
        f"{label}  {run.request_count} req{tools}  {duration(run.latency_s)}  "
        f"{run.input_tokens:,}/{run.output_tokens:,} tok  {money(run.cost_usd)} ({share(run.cost_usd, total)})"
        + _unknown_note(run.usage_unknown)
    )


def _unknown_note(count: int) -> str:
    # The totals leave these requests out: say so, or a sum would read as complete.
    return f"  [yellow]{count} req usage unknown[/]" if count else ""


def _deep(label: str, depth: int, cap: int) -> str:
    # Past ``cap`` levels the tree no longer indents (rich drops what passes the terminal's
    # edge): a deeper node hangs at that level and says its depth (1 = a top-level run).
    return label if depth <= cap else f"[dim]\\[depth {depth}][/] {label}"


def _add_run(node: Tree, run: Run, total: float, cap: int, depth: int = 1) -> None:
    branch = node.add(_deep(_run_label(run, total), depth, cap))
    under = branch if depth <= cap else node
    # Interleave nested runs and requests in start order: that is how the session ran.
    steps: list[tuple[int, int, Run | Request | ToolStep]] = [(c.start_ns, 0, c) for c in run.runs]
    steps += [(r.start_ns, 1, r) for r in run.requests]
    steps += [(t.start_ns, 2, t) for t in run.tools]
    for _, _, step in sorted(steps, key=lambda t: (t[0], t[1])):
        if isinstance(step, Run):
            _add_run(under, step, total, cap, depth + 1)
        else:
            under.add(_deep(_label(step, total), depth + 1, cap))


def cmd_show(args: argparse.Namespace) -> int:
    with reading_bar(not args.json, "reading spans") as progress:
        s, result = show_session(args.source, args.session_id, selection_of(args), progress)
    warn_read(result.source, result.corrupt, result.corrupt_values)
    if args.json:
        dump_json(show_json(s, source=result.source, corrupt=result.corrupt, corrupt_values=result.corrupt_values))
        return 0
    if args.html:
        from alephant_otel.web import write_html

        try:
            write_html(s, source=result.source, spec=args.source, path=args.html)
        except OSError as exc:
            raise CliError(f"cannot write {args.html}: {exc.strerror or exc}") from None
        where = Path(args.html).expanduser().absolute()
        sys.stdout.write(f"wrote session {s.session_id} to {where} (one self-contained page: open it in a browser)\n")
        return 0
    out = console(sys.stdout)
    total = s.cost_usd
    style = STATUS_STYLE.get(s.status, "")
    head = f"[bold]session {escape(s.session_id)}[/]"
    if s.name:
        head += f" '{escape(s.name)}'"
    if s.path:
        head += f"  {escape(s.path)}"
    if s.user_id:
        head += f"  user {escape(s.user_id)}"
    head += (
        f"  [{style}]{s.status}[/]  {when(s.start_ns)}  {duration(s.duration_s)}  "
        f"{s.request_count} req  {retries(s.retries)}  {s.input_tokens:,}/{s.output_tokens:,} tok  {money(total)}"
        + _unknown_note(s.usage_unknown)
    )
    tree = Tree(head)
    # Indent levels (4 columns each) that leave a label 40 columns, at most MAX_INDENT.
    cap = max(1, min(MAX_INDENT, (out.width - 40) // 4))
    steps: list[tuple[int, int, Run | Request | ToolStep]] = [(r.start_ns, 0, r) for r in s.runs]
    steps += [(r.start_ns, 1, r) for r in s.direct_requests]
    steps += [(t.start_ns, 2, t) for t in s.direct_tools]
    for _, _, step in sorted(steps, key=lambda t: (t[0], t[1])):
        if isinstance(step, Run):
            _add_run(tree, step, total, cap)
        else:
            tree.add(_label(step, total))
    out.print(tree)
    for note in session_notes(s):
        out.print(f"[dim]note: {note}[/]")
    if args.messages:
        from alephant_otel.cli._messages import print_messages

        print_messages(out, s)
    return 0
