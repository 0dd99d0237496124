"""What every ``sessions`` verb shares: the selection from the options, the progress bar, warnings, JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

from rich.console import Console

from alephant_otel.analytics import (
    Progress,
    parse_time,
)
from alephant_otel.analytics._answer import list_sessions
from alephant_otel.analytics._summary import Listing, Selection
from alephant_otel.cli._errors import UsageError

#: A read shorter than this shows no progress bar: one that appears and vanishes is noise.
_PROGRESS_AFTER_S: Final = 0.5


@contextlib.contextmanager
def reading_bar(enabled: bool, label: str) -> Iterator[Progress | None]:
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


def time_arg(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def selection_of(args: argparse.Namespace) -> Selection:
    """What the options ask for (``show`` has no filters but the time range)."""
    return Selection(
        since_ns=time_arg(args.since),
        until_ns=time_arg(args.until),
        agent=getattr(args, "agent", None),
        path=getattr(args, "path", None),
        status=getattr(args, "status", None),
        min_cost=getattr(args, "min_cost", None),
        user=getattr(args, "user", None),
        sort=getattr(args, "sort", "started"),
        limit=getattr(args, "limit", 0),
        active_window_s=args.active_window,
    )


def warn_read(source: str, corrupt: int, corrupt_values: int, notes: Sequence[str] = ()) -> None:
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    if corrupt:
        sys.stderr.write(f"warning: skipped {corrupt} corrupt line(s) in {source}\n")
    if corrupt_values:
        sys.stderr.write(
            f"warning: dropped {corrupt_values} corrupt number(s) "
            f"(NaN, infinite, negative, boolean or too large cost, tokens) in {source}\n"
        )


def read_listing(args: argparse.Namespace) -> Listing:
    with reading_bar(not args.json, "reading spans") as progress:
        listing = list_sessions(args.source, selection_of(args), progress)
    warn_read(listing.source, listing.corrupt, listing.corrupt_values, listing.notes)
    return listing


def piped(out: Console) -> bool:
    """Output for a program (a pipe, no ``COLUMNS``): summary lines stay whole, never broken at a width."""
    return not out.is_terminal and not os.environ.get("COLUMNS", "").strip()


def dump_json(doc: dict[str, Any]) -> None:
    # allow_nan=False: strict JSON (jq rejects NaN/Infinity); the report never puts one in.
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
