"""Where the local trace file lives by default: the one fact its writer and its readers share.

Standard library only, so the CLI finds the file without importing the OpenTelemetry SDK.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["DEMO_FILE_NAME", "default_trace_file", "demo_trace_file"]

_APP_DIR = "alephant-otel"
_FILE_NAME = "traces.otlp.jsonl"
#: The demo's own trace file, beside the default one.
DEMO_FILE_NAME = "demo.otlp.jsonl"


def default_trace_file() -> Path:
    """Where ``alephant-otel sessions`` looks when ``ALEPHANT_TRACE_FILE`` is unset.

    A per-user data directory, following the XDG base directory spec:

    * ``$XDG_DATA_HOME/alephant-otel/traces.otlp.jsonl`` when ``XDG_DATA_HOME``
      is set to an absolute path;
    * ``%LOCALAPPDATA%\\alephant-otel\\traces.otlp.jsonl`` on Windows;
    * ``~/.local/share/alephant-otel/traces.otlp.jsonl`` otherwise (macOS included).

    The library itself writes no trace file unless asked (``configure(trace_file=...)``
    or ``ALEPHANT_TRACE_FILE``); this is only the default location.

    Returns:
        The path; neither it nor its directory needs to exist.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / _APP_DIR / _FILE_NAME
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA", "")
        if local:
            return Path(local) / _APP_DIR / _FILE_NAME
    return Path.home() / ".local" / "share" / _APP_DIR / _FILE_NAME


def demo_trace_file() -> Path:
    """The demo's own trace file, next to the default one: the user's traces are never mixed with it."""
    return default_trace_file().with_name(DEMO_FILE_NAME)
