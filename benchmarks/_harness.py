"""Benchmark worker processes, driven from the runner: one variant per process, batches in turn.

Shared by ``run.py`` and ``peers.py``; the worker side is ``_workers.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class Worker:
    """One benchmark variant in its own process, driven a batch at a time."""

    def __init__(
        self, bench: str, variant: str, url: str, lib: str = "httpx", argv: Sequence[str] | None = None
    ) -> None:
        self.name = variant
        self.proc = subprocess.Popen(
            list(argv) if argv else [sys.executable, str(HERE / "_workers.py"), bench, variant, url, lib],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._read()  # {"ready": true} once warmed up

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died (exit {self.proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def batch(self, n: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def interleave(workers: list[Worker], rounds: int, n: int) -> dict[str, list[dict[str, Any]]]:
    """Run ``rounds`` rounds of one batch per worker, rotating the order each round."""
    out: dict[str, list[dict[str, Any]]] = {w.name: [] for w in workers}
    for r in range(rounds):
        k = r % len(workers)
        for w in workers[k:] + workers[:k]:
            out[w.name].append(w.batch(n))
    return out
