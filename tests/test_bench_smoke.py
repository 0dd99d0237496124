"""A smoke run of the peers benchmark (``benchmarks/run.py --smoke``), so that it cannot rot.

A handful of requests per arm, no callgrind and no timing assertion: each arm
starts, drives the real ``openai`` SDK against the benchmark server and says
what it recorded. The ``bare``, ``otel`` and ``alephant`` arms run in this
environment every time; a peer arm runs when its environment exists
(``bash benchmarks/peers_setup.sh`` makes them under ``benchmarks/.venvs``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from _util import wait_for_ci_job

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("openai_v2", "traceloop", "openinference", "logfire")


def test_the_peer_runner_runs_every_arm_it_can() -> None:
    # Under .ci/run the peers' environments are built in the background: wait, then require them all.
    built = wait_for_ci_job("peers", timeout=900)
    assert built in (None, "0"), f"benchmarks/peers_setup.sh failed in .ci/run (exit {built})"
    arms = ["bare", "otel", "alephant"] + [
        p for p in PEERS if built == "0" or (ROOT / "benchmarks" / ".venvs" / p / "bin" / "python").exists()
    ]
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--smoke", "--arms", ",".join(arms)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\w+): .*$", proc.stdout, re.M)}
    assert sorted(rows) == sorted(arms), proc.stdout
    assert "not run" not in proc.stdout, proc.stdout
    # What each arm records is told from its spans and the server's view of the wire.
    assert "0 spans" in rows["bare"]
    assert "1 span, " in rows["otel"] and "tokens" not in rows["otel"]
    assert re.search(r"1 span, \d+ attributes, tokens, cost, ids, 6 headers", rows["alephant"]), rows["alephant"]
    for peer in set(arms) & set(PEERS):
        assert "tokens" in rows[peer] and "headers" not in rows[peer], rows[peer]
