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


def plain_install_modules(*roots: str) -> set[str]:
    """Top-level modules that ``pip install <roots>`` brings: the packages and their dependencies.

    Read from the installed metadata (requirements without extras, markers evaluated here), so a
    module that only the ``dev`` extra installs (``httpx``) is not among them.
    """
    from importlib.metadata import PackageNotFoundError, distribution, packages_distributions

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return {mod for mod, dists in packages_distributions().items() if any(canonicalize_name(d) in seen for d in dists)}


def imported_modules(source: str) -> set[str]:
    """Top-level names of the modules ``source`` imports (absolute imports only)."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__"}


#: Set by .ci/run: a directory where each set-up step it runs in the background (``phoenix``,
#: ``chromium``) leaves ``<name>.pending`` when it starts and ``<name>.rc`` (its exit code) when done.
CI_JOBS_ENV = "ALEPHANT_CI_JOBS"


def wait_for_ci_job(name: str, timeout: float) -> str | None:
    """Wait until the background set-up step ``name`` of .ci/run has finished.

    Returns None when no such step was started (a local run: nothing to wait
    for), else its exit code as text, or ``"timeout"`` when it is still running
    after ``timeout`` seconds.
    """
    jobs = os.environ.get(CI_JOBS_ENV)
    if not jobs:
        return None
    rc, pending = Path(jobs) / f"{name}.rc", Path(jobs) / f"{name}.pending"
    if not rc.exists() and not pending.exists():
        return None
    deadline = time.monotonic() + timeout
    while not rc.exists():
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(0.5)
    # The writer may not have flushed yet: an empty file reads as "done, code unknown".
    return rc.read_text().strip() or "?"
