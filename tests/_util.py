"""Helpers shared by tests that start real processes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
T = TypeVar("T")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no inherited OTel/alephant settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ALEPHANT_"))}
    env.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def wait_for(probe: Callable[[], T], timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy (real processes flush asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
