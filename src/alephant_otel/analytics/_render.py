"""How values read to a person: shared by the terminal commands and the web view.

One place for the formats, so ``sessions list``, ``sessions show`` and the browser
page print the same cost, duration and time for the same span.
"""

from __future__ import annotations

import errno
import math
import os
from typing import Final, TextIO

from rich.console import Console
from rich.markup import escape as _markup_escape

from alephant_otel.analytics._model import iso

__all__ = [
    "CONTROLS",
    "MAX_INDENT",
    "STATUS_STYLE",
    "TIME_FORMS",
    "bind_error",
    "console",
    "duration",
    "escape",
    "money",
    "retries",
    "when",
]

#: How --since and --until read a time, said once for every command that takes them.
TIME_FORMS: Final = "ISO 8601 time, or a time ago in s, m, h, d or w (90s, 30m, 1h, 2d, 1w)"

#: The rich style of each session status.
STATUS_STYLE: Final = {"active": "cyan", "completed": "green", "intercepted": "bold red"}

#: C0 and C1 control characters, shown as ``\\xNN``. Span data comes from other
#: processes and backends: an ESC in a name must not reach the terminal as an escape
#: sequence (clear the screen, set the title, hide what follows), nor a CR or a newline
#: redraw the table.
CONTROLS: Final = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}

#: Levels of nested runs a tree indents (``sessions show``, the waterfall). A deeper
#: chain (a 40-level one met in the wild) would push its labels past the terminal's edge,
#: where rich drops them, or out of the waterfall's label column: from here on the
#: indentation stops growing and each label says its depth instead.
MAX_INDENT: Final = 8

#: The page width of piped output when ``COLUMNS`` does not say (rich would take 80).
_PIPED_WIDTH: Final = 200


def escape(text: str) -> str:
    """``text`` for rich markup: markup escaped and control characters made visible."""
    return _markup_escape(text.translate(CONTROLS))


def console(stream: TextIO) -> Console:
    """A rich console on ``stream``: the terminal's width, else ``COLUMNS``, else 200."""
    # highlight=False: rich's number colouring makes ids and costs harder to read.
    # Piped with no COLUMNS, a wide page instead of rich's 80 columns.
    columns = os.environ.get("COLUMNS", "").strip()
    width = None if stream.isatty() or (columns.isdigit() and int(columns) > 0) else _PIPED_WIDTH
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)


def money(x: float) -> str:
    """A cost in USD: four decimals from a cent up, six below, never a free-looking $0.000000."""
    if not math.isfinite(x):  # a sum of values that are each finite can still overflow
        return "-"
    if x == 0:
        return "$0"
    if 0 < x < 0.0000005:
        return "<$0.000001"
    return f"${x:,.4f}" if x >= 0.01 else f"${x:.6f}"


def retries(count: int) -> str:
    """``1 retry``, ``2 retries``."""
    return "1 retry" if count == 1 else f"{count} retries"


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it short: 340ms, 12.5s, 3.2m, 1.5h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def when(ns: int | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` (UTC), or ``-``."""
    text = iso(ns)
    return text[:19].replace("T", " ") if text else "-"


def bind_error(host: str, port: int, exc: OSError) -> str:
    """One line for a listening socket that could not be opened, with the way out when the port is taken."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use: pass --port with another port, or --port 0 for any free one"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
