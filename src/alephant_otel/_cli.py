"""The ``alephant-otel`` command line.

``alephant-otel sessions list | vitals | show SESSION_ID`` reads spans back
(the local trace file by default; ``--source`` for a file, Tempo, Jaeger or
Phoenix) and prints tables, a tree, or with ``--json`` a document whose
schema is described in :mod:`alephant_otel.analytics._report`.

A problem the user can act on prints one line to stderr, never a traceback:
exit 1 for a domain error (missing or unreadable source, unknown session,
ambiguous id prefix), 2 for a usage error (bad option value, a ``--source``
that names no known form). Subcommands register themselves through :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from rich.console import Console
from rich.tree import Tree

from alephant_otel._render import (
    CONTROLS,
    MAX_INDENT,
    STATUS_STYLE,
    TIME_FORMS,
    console,
    duration,
    escape,
    money,
    retries,
    when,
)
from alephant_otel._tablefit import Col, fit_table
from alephant_otel._version import __version__
from alephant_otel.analytics import (
    DEFAULT_ACTIVE_WINDOW_S,
    SORT_KEYS,
    STATUSES,
    Progress,
    Request,
    Run,
    SessionIdError,
    SourceError,
    SourceSpecError,
    VitalsConfig,
    parse_time,
)
from alephant_otel.analytics._breakdown import breakdown, check_dimension
from alephant_otel.analytics._report import list_json, session_notes, show_json, vitals_json
from alephant_otel.analytics._summary import Listing, Selection, list_sessions, session_vitals, show_session
from alephant_otel.analytics._toolstep import ToolStep

__all__ = ["SUBCOMMANDS", "main"]

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 1."""


class UsageError(CliError):
    """A bad argument value (a time, a source name): printed as one line, exit status 2."""


#: A read shorter than this shows no progress bar: one that appears and vanishes is noise.
_PROGRESS_AFTER_S: Final = 0.5


@contextlib.contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr, only when stderr is a terminal and the read takes a while."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    task = bar.add_task(label, total=None)
    show_at = time.monotonic() + _PROGRESS_AFTER_S
    shown = False

    def update(done: int, total: int | None) -> None:
        nonlocal shown
        bar.update(task, completed=done, total=total)
        if not shown and time.monotonic() >= show_at and (total is None or done < total):
            bar.start()
            shown = True

    try:
        yield update
    finally:
        if shown:
            bar.stop()


def _time(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _selection_of(args: argparse.Namespace) -> Selection:
    """What the options ask for (``show`` has no filters but the time range)."""
    return Selection(
        since_ns=_time(args.since),
        until_ns=_time(args.until),
        agent=getattr(args, "agent", None),
        path=getattr(args, "path", None),
        status=getattr(args, "status", None),
        min_cost=getattr(args, "min_cost", None),
        user=getattr(args, "user", None),
        sort=getattr(args, "sort", "started"),
        limit=getattr(args, "limit", 0),
        active_window_s=args.active_window,
    )


def _warn(source: str, corrupt: int, corrupt_values: int, notes: Sequence[str] = ()) -> None:
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    if corrupt:
        sys.stderr.write(f"warning: skipped {corrupt} corrupt line(s) in {source}\n")
    if corrupt_values:
        sys.stderr.write(
            f"warning: dropped {corrupt_values} corrupt number(s) "
            f"(NaN, infinite, negative, boolean or too large cost, tokens) in {source}\n"
        )


def _listing(args: argparse.Namespace) -> Listing:
    with _progress(not args.json, "reading spans") as progress:
        listing = list_sessions(args.source, _selection_of(args), progress)
    _warn(listing.source, listing.corrupt, listing.corrupt_values, listing.notes)
    return listing


def _piped(out: Console) -> bool:
    """Output for a program (a pipe, no ``COLUMNS``): summary lines stay whole, never broken at a width."""
    return not out.is_terminal and not os.environ.get("COLUMNS", "").strip()


def _dump(doc: dict[str, Any]) -> None:
    # allow_nan=False: strict JSON (jq rejects NaN/Infinity); the report never puts one in.
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


# --- sessions list ------------------------------------------------------------------


#: ``sessions list`` columns; the id and the cost are never narrowed, names fold first.
_LIST_COLS: Final = (
    Col("session", keep=True),
    Col("path", fold=True),
    Col("status"),
    Col("started"),
    Col("duration", "right"),
    Col("agents", fold=True),
    Col("runs", "right"),
    Col("requests", "right"),
    Col("retries", "right"),
    Col("tokens in/out", "right"),
    Col("cost", "right", keep=True),
)
#: Dropped in this order while the table is wider than the terminal: the status (is it still
#: running, was it intercepted) and the path say most after the id and the cost.
_LIST_DROP: Final = (
    "agents",
    "runs",
    "retries",
    "started",
    "duration",
    "tokens in/out",
    "requests",
    "path",
    "status",
)
#: The row of requests made outside any session.
_NO_SESSION: Final = "(no session)"


def _cmd_list(args: argparse.Namespace) -> int:
    if args.follow:
        from alephant_otel._livelist import follow_list

        return follow_list(args)
    listing = _listing(args)
    sessions, outside = listing.sessions, listing.outside
    if args.json:
        _dump(
            list_json(
                sessions,
                source=listing.source,
                corrupt=listing.corrupt,
                seen=listing.seen,
                corrupt_values=listing.corrupt_values,
                outside=outside,
            )
        )
        return 0
    out = console(sys.stdout)
    if not sessions and not outside:
        out.print(f"no sessions match in {escape(listing.source)} ({listing.seen} seen)")
        return 0
    rows = []
    for s in sessions:
        style = STATUS_STYLE.get(s.status, "")
        rows.append(
            (
                # The id cell holds the id alone, so that a copied cell pastes back into `sessions show`.
                escape(s.session_id),
                escape(s.path or "-"),
                f"[{style}]{s.status}[/]" + ("" if s.span_present else "[dim]*[/]"),
                when(s.start_ns),
                duration(s.duration_s),
                escape(", ".join(s.agents) or "-"),
                str(sum(1 for _ in s.walk_runs())),
                str(s.request_count),
                str(s.retries),
                f"{s.input_tokens:,}/{s.output_tokens:,}",
                money(s.cost_usd),
            )
        )
    outside_cost = sum(r.cost_usd for r in outside)
    if outside:
        rows.append(
            (
                f"[dim]{_NO_SESSION}[/]",
                "-",
                "-",
                when(outside[0].start_ns),
                "-",
                escape(", ".join(dict.fromkeys(r.agent_id for r in outside if r.agent_id)) or "-"),
                "-",
                str(len(outside)),
                str(sum(r.retried for r in outside)),
                f"{sum(r.input_tokens for r in outside):,}/{sum(r.output_tokens for r in outside):,}",
                money(outside_cost),
            )
        )
    title = f"sessions in {escape(listing.source)}"
    out.print(fit_table(_LIST_COLS, rows, out.width, _LIST_DROP, title=title))
    total = money(sum(s.cost_usd for s in sessions) + outside_cost)
    footer = f"{len(sessions)} of {listing.seen} sessions"
    if outside:
        footer += f" and {len(outside)} request(s) outside any session"
    footer += f", total {total}"
    if any(not s.span_present for s in sessions):
        footer += "  (status* : no session span read, rebuilt from request/run spans)"
    out.print(footer, soft_wrap=_piped(out))
    return 0


# --- sessions vitals ---------------------------------------------------------------


#: The ``vitals`` tables (cost by agent, by path): the agent or path folds, the cost stays whole.
_GROUP_COLS: Final = (
    Col("", fold=True),
    Col("sessions", "right"),
    Col("requests", "right"),
    Col("retries", "right"),
    Col("intercepted", "right"),
    Col("tokens in/out", "right"),
    Col("cost", "right", keep=True),
    Col("share", "right"),
)
_GROUP_DROP: Final = ("intercepted", "retries", "sessions", "tokens in/out", "requests")
#: Flag kinds (JSON names) as the text output says them: "errors" are the requests that failed.
_FLAG_LABEL: Final = {
    "high_latency": "high latency",
    "repeated_retries": "retries",
    "token_outlier": "tokens",
    "errors": "failed",
}


def _cmd_vitals(args: argparse.Namespace) -> int:
    with _progress(not args.json, "reading spans") as progress:
        vitals, result = session_vitals(
            args.source, _selection_of(args), VitalsConfig(min_peers=args.min_peers), progress
        )
    _warn(result.source, result.corrupt, result.corrupt_values, result.notes)
    sessions = result.sessions
    tables = [("cost by agent", vitals.by_agent), ("cost by path", vitals.by_path)]
    if args.by is not None:
        tables = [(f"cost by {args.by}", breakdown(sessions, args.by, vitals))]
    if args.json:
        _dump(
            vitals_json(
                vitals,
                source=result.source,
                corrupt=result.corrupt,
                seen=result.seen,
                corrupt_values=result.corrupt_values,
                by=None if args.by is None else (args.by, tables[0][1]),
            )
        )
        return 0
    out = console(sys.stdout)
    status = ", ".join(f"{v} {k}" for k, v in vitals.by_status.items())
    out.print(
        f"[bold]{len(sessions)} sessions[/] ({status}) in {escape(result.source)}: "
        f"{vitals.requests} requests, {retries(vitals.retries)}, {vitals.failed} failed, "
        f"{vitals.intercepted} intercepted, {vitals.input_tokens:,}/{vitals.output_tokens:,} tokens, "
        f"{money(vitals.cost_usd)}; latency p50 {duration(vitals.latency_p50_s)}, p95 {duration(vitals.latency_p95_s)}",
        soft_wrap=_piped(out),
    )
    for title, groups in tables:
        if not groups:
            out.print(f"{title}: none in these sessions")
            continue
        rows = [
            (
                escape(g.key),
                str(g.sessions),
                str(g.requests),
                str(g.retries),
                str(g.intercepted),
                f"{g.input_tokens:,}/{g.output_tokens:,}",
                money(g.cost_usd),
                _share(g.cost_usd, vitals.cost_usd),
            )
            for g in groups[: args.limit or None]
        ]
        out.print(fit_table(_GROUP_COLS, rows, out.width, _GROUP_DROP, title=title))
    flagged = vitals.flagged
    if not flagged:
        out.print("no outliers")
        return 0
    out.print(f"[bold]outliers[/] ({len(flagged)} of {len(sessions)} sessions)")
    for sv in flagged:
        s = sv.session
        out.print(
            f"  [bold]{escape(s.session_id)}[/] {escape(s.path or '-')}  {s.status}  p95 {duration(sv.latency_p95_s)}  "
            f"{retries(s.retries)}  {s.tokens:,} tok  {money(s.cost_usd)}",
            soft_wrap=_piped(out),
        )
        for f in sv.flags:
            out.print(f"    [yellow]{_FLAG_LABEL.get(f.kind, f.kind)}[/]: {escape(f.detail)}", soft_wrap=_piped(out))
    return 0


# --- sessions show --------------------------------------------------------------------


def _share(part: float, whole: float) -> str:
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
        bits.append(f"{money(r.cost_usd)} ({_share(r.cost_usd, total)})")
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
        bits.append(f"{money(t.cost_usd)} ({_share(t.cost_usd, total)})")
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
        f"{run.input_tokens:,}/{run.output_tokens:,} tok  {money(run.cost_usd)} ({_share(run.cost_usd, total)})"
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


def _cmd_show(args: argparse.Namespace) -> int:
    with _progress(not args.json, "reading spans") as progress:
        s, result = show_session(args.source, args.session_id, _selection_of(args), progress)
    _warn(result.source, result.corrupt, result.corrupt_values)
    if args.json:
        _dump(show_json(s, source=result.source, corrupt=result.corrupt, corrupt_values=result.corrupt_values))
        return 0
    if args.html:
        from alephant_otel._web import write_html

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
    return 0


# --- parser ---------------------------------------------------------------------------


def _finite_float(text: str) -> float:
    # float() takes "nan" and "inf": a window of inf seconds cannot become nanoseconds.
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def _dimension(text: str) -> str:
    try:
        return check_dimension(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _common() -> argparse.ArgumentParser:
    """The options of every ``sessions`` verb: where to read and how to print."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--source",
        help="trace file path, tempo+http(s)://host:port, jaeger+http(s)://host:port, "
        "phoenix+http(s)://host:port[?project=NAME] or clickhouse+http(s)://host:port/DATABASE[?table=NAME] "
        "(default: $ALEPHANT_TRACE_FILE or the local trace file)",
    )
    common.add_argument("--json", action="store_true", help="print a JSON document (stable schema) instead of tables")
    common.add_argument("--since", help=f"only sessions active after this time: {TIME_FORMS}")
    common.add_argument("--until", help=f"only sessions started before this time: {TIME_FORMS}")
    common.add_argument(
        "--active-window",
        type=_finite_float,
        default=DEFAULT_ACTIVE_WINDOW_S,
        metavar="SECONDS",
        help="a session without an ended session span is active if it had activity this recently "
        f"(default {DEFAULT_ACTIVE_WINDOW_S:.0f})",
    )
    return common


def _selection() -> argparse.ArgumentParser:
    """The options that pick and order many sessions (``list``, ``vitals``; not ``show``)."""
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("--agent", help="only sessions in which this agent id ran")
    selection.add_argument("--user", help="only sessions serving this user id (session(user_id=...))")
    selection.add_argument("--path", help="only sessions on this path (or below it)")
    selection.add_argument("--status", choices=STATUSES, help="only sessions with this status")
    selection.add_argument("--min-cost", type=_finite_float, metavar="USD", help="only sessions costing at least this")
    selection.add_argument("--sort", choices=tuple(SORT_KEYS), default="started", help="order, largest first")
    selection.add_argument("--limit", type=_positive_int, default=0, help="show at most this many sessions (0: all)")
    return selection


def _register_sessions(subparsers: Any) -> None:
    common = _common()
    selection = _selection()
    sessions = subparsers.add_parser(
        "sessions",
        help="rebuild sessions, costs and vitals from exported spans",
        description="Rebuild sessions (runs, requests, cost, tokens, latency, retries, policy events) from spans.",
    )
    verbs = sessions.add_subparsers(dest="verb", metavar="{list,vitals,show}")
    verbs.required = True
    p = verbs.add_parser("list", parents=[common, selection], help="one row per session")
    p.add_argument(
        "--follow", action="store_true", help="a live table (active sessions first) while a trace file grows"
    )
    p.set_defaults(handler=_cmd_list)
    p = verbs.add_parser("vitals", parents=[common, selection], help="totals, cost by agent and path, outliers")
    p.add_argument("--min-peers", type=_positive_int, default=3, help="sessions needed before flagging outliers")
    p.add_argument(
        "--by",
        type=_dimension,
        metavar="DIMENSION",
        help="cost by this dimension only: agent, path, user, tool, model or metadata.KEY (default: agent and path)",
    )
    p.set_defaults(handler=_cmd_vitals)
    p = verbs.add_parser("show", parents=[common], help="one session as a tree of runs and requests")
    p.add_argument(
        "session_id", metavar="SESSION_ID", help="a session id or unique prefix, as printed by `sessions list`"
    )
    p.add_argument("--html", metavar="FILE", help="write the session's waterfall as one self-contained HTML file")
    p.set_defaults(handler=_cmd_show)


def _register_demo(subparsers: Any) -> None:
    from alephant_otel._democli import register_demo

    register_demo(subparsers)


def _register_ui(subparsers: Any) -> None:
    from alephant_otel._web import register_ui

    register_ui(subparsers)


def _register_emulator(subparsers: Any) -> None:
    from alephant_otel._emulatorcli import register_emulator

    register_emulator(subparsers)


#: Each entry adds one top-level subcommand and sets ``handler`` on its parser
#: (``handler(args) -> exit status``).
SUBCOMMANDS: list[Callable[[Any], None]] = [_register_sessions, _register_demo, _register_ui, _register_emulator]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line (exit 2); subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alephant-otel",
        description="Alephant OpenTelemetry bridge: read back sessions, runs, costs and vitals.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 an answer, 1 a domain error, 2 bad usage).

    Examples:
        >>> main(["sessions", "list", "--source", "traces.jsonl", "--json"])  # doctest: +SKIP
        0
    """
    parser = _parser()
    if not (sys.argv[1:] if argv is None else argv):
        # A bare `alephant-otel`: what it can do, not only an error about a missing argument;
        # still exit 2, a usage error, for scripts.
        parser.print_help()
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    handler: Handler = args.handler
    # A sessions command reads up to millions of spans into small objects that
    # hold no cycles. Re-enabled after the read, the cyclic GC rescanned them
    # all, generation after generation, while the command printed its 20 lines
    # (measured: ~3 s on a 1M-span file); they are freed by reference counts
    # when the command returns. (The demo runs an app: it keeps the GC.)
    gc_was_enabled = gc.isenabled()
    if args.command == "sessions":
        gc.disable()
    try:
        return handler(args)
    except (CliError, SourceError, SessionIdError) as exc:
        sys.stderr.write(f"alephant-otel: {str(exc).translate(CONTROLS)}\n")
        return 2 if isinstance(exc, (UsageError, SourceSpecError)) else 1
    except KeyboardInterrupt:
        sys.stderr.write("alephant-otel: interrupted\n")
        return 130
    except BrokenPipeError:
        # `alephant-otel sessions list | head`: stop quietly.
        with contextlib.suppress(OSError):
            sys.stdout.close()
        return 0
    finally:
        if gc_was_enabled:
            gc.enable()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
