"""The command-line side of the web view: ``alephant-otel ui`` and the ``--html`` export."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from alephant_otel.analytics import (
    DEFAULT_ACTIVE_WINDOW_S,
    SORT_KEYS,
    STATUSES,
    JaegerSource,
    Session,
    SourceError,
    SourceSpecError,
    TempoSource,
    open_source,
)
from alephant_otel.analytics._render import TIME_FORMS, bind_error
from alephant_otel.web._pages import export_page
from alephant_otel.web._view import PAGE_SIZE, ListQuery, TraceLinks, waterfall

__all__ = ["register_ui", "write_html"]

_USAGE = 2
_DOMAIN = 1


def _links(spec: str | None) -> TraceLinks | None:
    try:
        src = open_source(spec)
    except SourceError:
        return None
    if isinstance(src, TempoSource):
        return TraceLinks("tempo", src.base)
    if isinstance(src, JaegerSource):
        return TraceLinks("jaeger", src.base)
    return None


def write_html(session: Session, *, source: str, spec: str | None, path: str | Path) -> None:
    """Write one session's waterfall as a self-contained HTML file (``sessions show ID --html FILE``).

    Raises:
        OSError: The file cannot be written.
    """
    page = export_page(waterfall(session, source=source, links=_links(spec)))
    Path(path).expanduser().write_text(page, encoding="utf-8")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535 (0: any free port)")
    return value


def register_ui(subparsers: Any) -> None:
    """Add ``alephant-otel ui`` to the CLI."""
    p = subparsers.add_parser(
        "ui",
        help="a local, read-only web view of sessions (list, vitals charts, waterfalls)",
        description="Serve a read-only web view of the sessions in a trace file or backend: the session list "
        "with the vitals as charts, and each session as a waterfall. Loopback only unless --allow-remote. "
        "A source that cannot be read yet (a missing file, an unreachable backend, a file with no span line) "
        "is served anyway, with a warning here and the reason on the page; a --source in no known form is a "
        "usage error (exit 2).",
    )
    p.add_argument(
        "--source",
        help="trace file path, tempo+http(s)://host:port, jaeger+http(s)://host:port or "
        "phoenix+http(s)://host:port[?project=NAME] (default: $ALEPHANT_TRACE_FILE or the local trace file)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (the view has no authentication: anyone who can reach it "
        "reads your sessions)",
    )
    g = p.add_argument_group("initial filters (the page can change them)")
    g.add_argument("--since", help=f"only sessions active after this time: {TIME_FORMS}")
    g.add_argument("--until", help=f"only sessions started before this time: {TIME_FORMS}")
    g.add_argument("--agent", help="only sessions in which this agent id ran")
    g.add_argument("--path", help="only sessions on this path (or below it)")
    g.add_argument("--status", choices=STATUSES, help="only sessions with this status")
    g.add_argument("--min-cost", type=float, metavar="USD", help="only sessions costing at least this")
    g.add_argument("--sort", choices=tuple(SORT_KEYS), default="started", help="order, largest first")
    g.add_argument("--limit", type=int, default=PAGE_SIZE, help=f"sessions per page (default {PAGE_SIZE})")
    g.add_argument(
        "--active-window",
        type=float,
        default=DEFAULT_ACTIVE_WINDOW_S,
        metavar="SECONDS",
        help=f"a session without an ended session span is active if it had activity this recently "
        f"(default {DEFAULT_ACTIVE_WINDOW_S:.0f})",
    )
    p.set_defaults(handler=_cmd_ui)


def _has_display() -> bool:
    """Whether a graphical browser can open (on Linux without X or Wayland, webbrowser would
    start a text browser in this terminal)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"alephant-otel: {message}\n")
    return status


def _cmd_ui(args: argparse.Namespace) -> int:
    from alephant_otel.web._server import SessionStore, UiServer, serve

    if not is_loopback(args.host) and not args.allow_remote:
        return _fail(
            f"refusing to serve on {args.host}: the view has no authentication; pass --allow-remote to serve "
            "beyond this machine",
            _USAGE,
        )
    defaults = ListQuery(
        status=args.status or "",
        path=args.path or "",
        agent=args.agent or "",
        min_cost="" if args.min_cost is None else f"{args.min_cost:g}",
        since=args.since or "",
        until=args.until or "",
        sort=args.sort,
        size=max(1, min(args.limit or PAGE_SIZE, 500)),
    )
    try:
        store = SessionStore(args.source, active_window_s=args.active_window)
    except SourceError as exc:
        # A --source in no known form is a usage error, as for `sessions`.
        return _fail(str(exc), _USAGE if isinstance(exc, SourceSpecError) else _DOMAIN)
    # A source that cannot be read yet is served anyway, with the warning `sessions list` would
    # give as its error: the page says the same, and a trace file may appear once the app runs.
    try:
        _, first = store.read()
    except SourceError as exc:
        sys.stderr.write(f"alephant-otel: warning: {exc}\n")
    else:
        if first.spans == 0 and first.corrupt:
            sys.stderr.write(
                f"alephant-otel: warning: no valid span line in {store.description}: {first.corrupt} line(s) "
                "are not OTLP/JSON trace data (is it a trace file?)\n"
            )
    try:
        server = UiServer((args.host, args.port), store, defaults, check_host=is_loopback(args.host))
    except OSError as exc:
        return _fail(bind_error(args.host, args.port, exc), _DOMAIN)
    # Errors answering a page are logged here (the browser gets a plain page, never a traceback).
    logging.basicConfig(level=logging.WARNING, format="alephant-otel ui: %(levelname)s %(message)s")
    if not is_loopback(args.host):
        sys.stderr.write(
            f"alephant-otel: warning: serving on {args.host} with no authentication: anyone who can reach "
            "this address can read these sessions\n"
        )

    def ready() -> None:
        sys.stdout.write(f"alephant-otel ui: {store.description} at {server.url} (Ctrl-C to stop)\n")
        sys.stdout.flush()
        if not args.no_browser and _has_display():
            # In a thread: a browser that runs in the foreground must not hold up the server.
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()

    try:
        serve(server, ready)
    except KeyboardInterrupt:
        sys.stdout.write("alephant-otel ui: stopped\n")
    return 0
