"""``alephant-otel sessions list --follow``: the session table, live, while a trace file grows.

On a terminal the table is redrawn in place (a rich ``Live`` display); piped,
a new table is printed each time the sessions change, so a log or a test
reading the output sees every state. Active sessions come first, then the
most recent. Ctrl-C ends it with status 0.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Final

from rich.console import Console
from rich.live import Live
from rich.table import Table

from alephant_otel.analytics import (
    FileSource,
    Session,
    SessionSet,
    SourceError,
    TraceFileMissing,
    filter_sessions,
    open_source,
    parse_time,
)
from alephant_otel.analytics._follow import TraceFollower
from alephant_otel.analytics._render import STATUS_STYLE, console, escape
from alephant_otel.analytics._summary import Selection, SummarySource
from alephant_otel.web._view import list_row

__all__ = ["follow_list"]

_INTERVAL_S: Final = 1.0
_COLUMNS: Final = (
    ("session", "session_id", "left"),
    ("path", "path", "left"),
    ("status", "status", "left"),
    ("started", "started", "left"),
    ("duration", "duration", "right"),
    ("agents", "agents", "left"),
    ("runs", "runs", "right"),
    ("requests", "requests", "right"),
    ("retries", "retries", "right"),
    ("tokens in/out", "tokens", "right"),
    ("cost", "cost", "right"),
)


#: Columns left out, in this order, while the table is wider than the terminal.
_DROP_ORDER: Final = ("agents", "runs", "retries", "started", "tokens", "duration", "requests", "path", "status")


def _order(sessions: list[Session]) -> list[Session]:
    return sorted(sessions, key=lambda s: (s.status != "active", -max(s.last_activity_ns, s.end_ns or 0)))


def _columns(rows: list[dict[str, object]], width: int) -> list[tuple[str, str, str]]:
    """The columns that fit ``width``: the least needed ones are dropped first, never the id or cost."""
    cols = list(_COLUMNS)

    def needed(c: tuple[str, str, str]) -> int:
        return max([len(c[0]), *(len(str(r[c[1]])) for r in rows)]) + 3

    for key in _DROP_ORDER:
        if sum(needed(c) for c in cols) + 1 <= width:
            break
        cols = [c for c in cols if c[1] != key]
    return cols


def _table(result: SessionSet, shown: list[Session], limit: int, width: int) -> Table:
    active = sum(1 for s in shown if s.status == "active")
    table = Table(
        title=f"sessions in {escape(result.source)}: {len(shown)} shown, {active} active (Ctrl-C to stop)",
        title_justify="left",
    )
    sessions = shown[: limit or None]
    rows = [list_row(s) for s in sessions]
    columns = _columns(rows, width)
    for label, key, justify in columns:
        # Ids and costs stay whole: an id is pasted into `sessions show`.
        table.add_column(label, justify=justify, no_wrap=key in ("session_id", "cost"))  # type: ignore[arg-type]
    for s, row in zip(sessions, rows, strict=True):
        cells = []
        for _, key, _ in columns:
            if key == "status":
                cells.append(f"[{STATUS_STYLE.get(s.status, '')}]{s.status}[/]")
            else:
                cells.append(escape(str(row[key])))
        table.add_row(*cells)
    return table


def _fail(message: str) -> int:
    sys.stderr.write(f"alephant-otel: {message}\n")
    return 1


def follow_list(args: argparse.Namespace) -> int:
    """Run ``sessions list --follow`` until interrupted."""
    # The CLI pauses the cyclic GC for a one-off read; a process that runs for hours keeps it.
    gc.enable()
    # Errors are written here, not raised as the CLI's CliError: run as `python -m alephant_otel.cli._main`,
    # the CLI module is __main__ and this module's import of it is a second copy with its own classes.
    if args.json:
        return _fail("--follow draws a live table; it cannot be combined with --json")
    try:
        src = open_source(args.source)
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except (SourceError, ValueError) as exc:
        return _fail(str(exc))
    out = console(sys.stdout)
    limit = args.limit or (max(out.height - 8, 10) if out.is_terminal else 0)
    select: Callable[[], tuple[SessionSet, list[Session]]]
    if isinstance(src, SummarySource):
        # The server filters; each poll is one query answering one row per session.
        summary, said = src, False
        wanted = Selection(
            since_ns=since,
            until_ns=until,
            agent=args.agent,
            path=args.path,
            status=args.status,
            min_cost=args.min_cost,
            active_window_s=args.active_window,
        )

        last: tuple[SessionSet, list[Session]] | None = None

        def select() -> tuple[SessionSet, list[Session]]:
            nonlocal said, last
            try:
                listing = summary.list_sessions(wanted)
            except SourceError:
                if last is None:
                    raise
                return last  # a failed poll keeps the last table; the next one asks again
            if listing.notes and not said:
                said = True
                for note in listing.notes:
                    sys.stderr.write(f"note: {note}\n")
            last = (SessionSet(listing.sessions, listing.source, 0, listing.corrupt), _order(listing.sessions))
            return last

    elif isinstance(src, FileSource):
        follower = TraceFollower(src.path, active_window_s=args.active_window, missing_hint=src.missing_hint)

        def select() -> tuple[SessionSet, list[Session]]:
            result = follower.poll()
            chosen = filter_sessions(
                result.sessions,
                since_ns=since,
                until_ns=until,
                agent=args.agent,
                path=args.path,
                status=args.status,
                min_cost=args.min_cost,
            )
            return result, _order(chosen)

    else:
        return _fail(f"--follow reads a growing trace file or ClickHouse; {src.description} is not one of them")

    try:
        result, shown = _first(select)
    except SourceError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0
    try:
        if out.is_terminal:
            with Live(_table(result, shown, limit, out.width), console=out, auto_refresh=False) as live:
                while True:
                    time.sleep(_INTERVAL_S)
                    result, shown = select()
                    live.update(_table(result, shown, limit, out.width), refresh=True)
        else:
            _print_changes(out, select, limit, (result, shown))
    except KeyboardInterrupt:
        return 0
    return 0


def _first(select: Callable[[], tuple[SessionSet, list[Session]]]) -> tuple[SessionSet, list[Session]]:
    """The first read; a file that does not exist yet is waited for, as ``tail -F`` does."""
    said = False
    while True:
        try:
            return select()
        except TraceFileMissing as exc:
            if not said:
                sys.stderr.write(f"alephant-otel: {exc}: waiting for it to appear (Ctrl-C stops)\n")
                sys.stderr.flush()
                said = True
        time.sleep(_INTERVAL_S)


def _print_changes(
    out: Console,
    select: Callable[[], tuple[SessionSet, list[Session]]],
    limit: int,
    first: tuple[SessionSet, list[Session]],
) -> None:
    # Piped: a table whenever what it would show changes.
    last: object = None
    current = first
    while True:
        result, shown = current
        key = [tuple(list_row(s).values()) for s in shown]
        if key != last:
            out.print(_table(result, shown, limit, out.width))
            out.file.flush()
            last = key
        time.sleep(_INTERVAL_S)
        current = select()
