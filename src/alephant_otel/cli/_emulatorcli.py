"""``alephant-otel emulator``: the package's gateway emulator in the foreground, for trying things offline.

Its URL is the first line printed, so a script can read it
(``url=$(alephant-otel emulator | head -1)`` in the background, or by eye); each
request it then receives is one line with the alephant headers it carried, which
is what the gateway would group by. It stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from alephant_otel import _names as n

__all__ = ["register_emulator"]

#: How often the foreground loop prints what arrived: often enough to read as live.
_POLL_S = 0.1
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _line(method: str, path: str, headers: Any) -> str:
    shown = [
        f"{name}={headers[name]}"
        for name in (
            n.HEADER_SESSION_ID,
            n.HEADER_SESSION_NAME,
            n.HEADER_SESSION_PATH,
            n.HEADER_AGENT_ID,
            n.HEADER_RUN_ID,
            n.HEADER_REQUEST_ID,
        )
        if name in headers
    ]
    return f"{method} {path}  " + ("  ".join(shown) if shown else "(no alephant headers)")


def _cmd_emulator(args: Any) -> int:
    from alephant_otel.analytics._render import CONTROLS, bind_error
    from alephant_otel.cli._errors import CliError
    from alephant_otel.testing import GatewayEmulator

    try:
        gw = GatewayEmulator(host=args.host, port=args.port, report_cost=args.report_cost, latency=args.latency)
    except OSError as exc:
        raise CliError(bind_error(args.host, args.port, exc)) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    out = sys.stdout
    try:
        with gw:
            # The first line is the URL alone: what `head -1` or a test reads.
            out.write(gw.url + "\n")
            out.write(
                f"# the Alephant gateway emulator: export {n.ENV_GATEWAY_URL}={gw.url} {n.ENV_VIRTUAL_KEY}=anything "
                f"{n.ENV_TRACE_FILE}=traces.otlp.jsonl; the OpenAI base_url is {gw.openai_base_url}, the Anthropic "
                f"one {gw.url}; any api key works; Ctrl-C stops it\n"
            )
            if args.host not in _LOOPBACK:
                out.write(f"# warning: listening on {args.host}, not loopback: anyone who can reach it may call it\n")
            out.flush()
            seen = 0

            def say_new() -> None:
                nonlocal seen
                received = gw.requests
                if not args.quiet:
                    for r in received[seen:]:
                        out.write(_line(r.method, r.path, r.headers).translate(CONTROLS) + "\n")
                    out.flush()
                seen = len(received)

            try:
                while not stop.wait(_POLL_S):
                    say_new()
            finally:
                # What arrived since the last look is said too, also when stopped by a signal.
                say_new()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def register_emulator(subparsers: Any) -> None:
    """Add ``alephant-otel emulator`` to the CLI."""
    p = subparsers.add_parser(
        "emulator",
        help="run the gateway emulator in the foreground (its URL on the first line), to try things offline",
        description="Serve the package's gateway emulator (OpenAI-compatible and Anthropic-style endpoints, "
        "streaming and not, deterministic usage) until Ctrl-C. Point ALEPHANT_GATEWAY_URL and your SDK's "
        "base_url at it; each request it receives is printed with the alephant headers it carried.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port, printed on the first line)")
    p.add_argument(
        "--report-cost",
        action="store_true",
        help="report each request's cost in a response header, as the gateway does (default: the package "
        "prices requests itself)",
    )
    p.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="delay before every answer")
    p.add_argument("--quiet", action="store_true", help="do not print a line per request received")
    p.set_defaults(handler=_cmd_emulator)
