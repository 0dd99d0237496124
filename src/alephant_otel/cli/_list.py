"""``alephant-otel sessions list``: one row per session (``--follow``: :mod:`alephant_otel.cli._livelist`)."""

from __future__ import annotations

import argparse
import sys
from typing import Final

from alephant_otel.analytics._render import (
    STATUS_STYLE,
    console,
    duration,
    escape,
    money,
    when,
)
from alephant_otel.analytics._report import list_json
from alephant_otel.cli._common import dump_json, piped, read_listing
from alephant_otel.cli._tablefit import Col, fit_table

__all__ = ["cmd_list"]


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


def cmd_list(args: argparse.Namespace) -> int:
    if args.follow:
        from alephant_otel.cli._livelist import follow_list

        return follow_list(args)
    listing = read_listing(args)
    sessions, outside = listing.sessions, listing.outside
    if args.json:
        dump_json(
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
    out.print(footer, soft_wrap=piped(out))
    return 0
