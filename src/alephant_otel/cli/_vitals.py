"""``alephant-otel sessions vitals``: totals, cost by agent and path (or ``--by``), outliers."""

from __future__ import annotations

import argparse
import sys
from typing import Final

from alephant_otel.analytics import (
    VitalsConfig,
)
from alephant_otel.analytics._answer import session_vitals
from alephant_otel.analytics._breakdown import breakdown
from alephant_otel.analytics._render import (
    console,
    duration,
    escape,
    money,
    retries,
)
from alephant_otel.analytics._report import vitals_json
from alephant_otel.cli._common import dump_json, piped, reading_bar, selection_of, warn_read
from alephant_otel.cli._show import share
from alephant_otel.cli._tablefit import Col, fit_table

__all__ = ["cmd_vitals"]


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


def cmd_vitals(args: argparse.Namespace) -> int:
    with reading_bar(not args.json, "reading spans") as progress:
        vitals, result = session_vitals(
            args.source, selection_of(args), VitalsConfig(min_peers=args.min_peers), progress
        )
    warn_read(result.source, result.corrupt, result.corrupt_values, result.notes)
    sessions = result.sessions
    tables = [("cost by agent", vitals.by_agent), ("cost by path", vitals.by_path)]
    if args.by is not None:
        tables = [(f"cost by {args.by}", breakdown(sessions, args.by, vitals))]
    if args.json:
        dump_json(
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
        soft_wrap=piped(out),
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
                share(g.cost_usd, vitals.cost_usd),
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
            soft_wrap=piped(out),
        )
        for f in sv.flags:
            out.print(f"    [yellow]{_FLAG_LABEL.get(f.kind, f.kind)}[/]: {escape(f.detail)}", soft_wrap=piped(out))
    return 0
