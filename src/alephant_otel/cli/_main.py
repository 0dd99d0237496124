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
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from alephant_otel._version import __version__
from alephant_otel.cli._errors import REPORTED, report
from alephant_otel.cli._sessionsargs import register_sessions

__all__ = ["SUBCOMMANDS", "main"]

Handler = Callable[[argparse.Namespace], int]


def _register_sessions(subparsers: Any) -> None:
    register_sessions(subparsers)


def _register_demo(subparsers: Any) -> None:
    from alephant_otel.cli._democli import register_demo

    register_demo(subparsers)


def _register_ui(subparsers: Any) -> None:
    from alephant_otel.web import register_ui

    register_ui(subparsers)


def _register_emulator(subparsers: Any) -> None:
    from alephant_otel.cli._emulatorcli import register_emulator

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
    except REPORTED as exc:
        return report(exc)
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
