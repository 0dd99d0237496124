"""The ``sessions`` command's parser: where to read, which sessions, and its three verbs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from alephant_otel.analytics import (
    DEFAULT_ACTIVE_WINDOW_S,
    SORT_KEYS,
    STATUSES,
)
from alephant_otel.analytics._breakdown import check_dimension
from alephant_otel.analytics._render import (
    TIME_FORMS,
)
from alephant_otel.cli._errors import REPORTED, report
from alephant_otel.cli._list import cmd_list
from alephant_otel.cli._show import cmd_show
from alephant_otel.cli._vitals import cmd_vitals

__all__ = ["register_sessions", "run_sessions"]


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


def register_sessions(subparsers: Any) -> None:
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
    p.set_defaults(handler=cmd_list)
    p = verbs.add_parser("vitals", parents=[common, selection], help="totals, cost by agent and path, outliers")
    p.add_argument("--min-peers", type=_positive_int, default=3, help="sessions needed before flagging outliers")
    p.add_argument(
        "--by",
        type=_dimension,
        metavar="DIMENSION",
        help="cost by this dimension only: agent, path, user, tool, model or metadata.KEY (default: agent and path)",
    )
    p.set_defaults(handler=cmd_vitals)
    p = verbs.add_parser("show", parents=[common], help="one session as a tree of runs and requests")
    p.add_argument(
        "session_id", metavar="SESSION_ID", help="a session id or unique prefix, as printed by `sessions list`"
    )
    p.add_argument("--html", metavar="FILE", help="write the session's waterfall as one self-contained HTML file")
    p.add_argument(
        "--messages", action="store_true", help="print each request's captured conversation (content capture on)"
    )
    p.set_defaults(handler=cmd_show)


def run_sessions(argv: Sequence[str]) -> int:
    """Run ``alephant-otel sessions ARGV...`` (for the demo, which prints what it traced); returns the exit status."""
    parser = argparse.ArgumentParser(prog="alephant-otel")
    register_sessions(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sessions", *argv])
    try:
        status: int = args.handler(args)
    except REPORTED as exc:
        return report(exc)
    return status
