"""The CLI's errors: a problem the user can act on is one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

from alephant_otel.analytics import SessionIdError, SourceError, SourceSpecError
from alephant_otel.analytics._render import CONTROLS

__all__ = ["CliError", "UsageError", "report"]


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 1."""


class UsageError(CliError):
    """A bad argument value (a time, a source name): printed as one line, exit status 2."""


#: The errors :func:`report` turns into one line; anything else is a bug and keeps its traceback.
REPORTED: tuple[type[Exception], ...] = (CliError, SourceError, SessionIdError)


def report(exc: Exception) -> int:
    """Print ``exc`` as one line on stderr; returns the exit status (2 bad usage, 1 otherwise)."""
    sys.stderr.write(f"alephant-otel: {str(exc).translate(CONTROLS)}\n")
    return 2 if isinstance(exc, (UsageError, SourceSpecError)) else 1
