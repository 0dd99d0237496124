"""`alephant-otel demo`: runs end to end and prints totals that equal what is in the trace file."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from _util import BIN, clean_env

from alephant_otel.analytics._tracereader import iter_trace_file


def _attr(kv: dict) -> object:
    v = kv["value"]
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    return None


def _request_spans(path):
    for doc in iter_trace_file(path):
        for rs in doc["resourceSpans"]:
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    attrs = {kv["key"]: _attr(kv) for kv in span.get("attributes", [])}
                    if attrs.get("alephant.span.kind") == "request":
                        yield attrs


def test_demo_totals_equal_the_trace_file(tmp_path) -> None:
    trace_file = tmp_path / "demo.otlp.jsonl"
    done = subprocess.run([str(BIN / "alephant-otel"), "demo", "--trace-file", str(trace_file)],
                          env=clean_env(COLUMNS="200"), capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"demo totals \(counted in-process\): requests=(\d+) retries=(\d+) intercepted=(\d+) "
                      r"input_tokens=(\d+) output_tokens=(\d+) cost_usd=([0-9.]+)", done.stdout)
    assert match, done.stdout
    requests, retries, intercepted, inp, out = (int(x) for x in match.groups()[:5])
    cost = float(match.group(6))
    spans = list(_request_spans(trace_file))
    assert requests == len(spans) >= 15
    assert retries == sum(1 for a in spans if a.get("alephant.retry.attempt")) == 1
    assert intercepted == sum(1 for a in spans if a.get("alephant.intercepted")) == 1
    assert inp == sum(a.get("gen_ai.usage.input_tokens", 0) for a in spans)
    assert out == sum(a.get("gen_ai.usage.output_tokens", 0) for a in spans)
    assert cost == pytest.approx(sum(a.get("alephant.cost.usd", 0.0) for a in spans), abs=1e-8)
    assert any(a.get("alephant.streaming") for a in spans)
    # The session list and one session tree were printed, read back from the same file.
    assert "Refund for order 1042" in done.stdout
    assert "invoke_agent" in done.stdout or "triage" in done.stdout


def _demo_env(home: Path) -> dict[str, str]:
    return clean_env(HOME=str(home), COLUMNS="200", XDG_DATA_HOME="")


def test_demo_on_a_plain_install_uses_its_own_fresh_file(plain_install: Path, tmp_path: Path) -> None:
    # `pip install alephant-otel && alephant-otel demo`: no openai SDK, no dev extras.
    home = tmp_path / "home"
    data = home / ".local" / "share" / "alephant-otel"
    for _ in range(2):
        done = subprocess.run([str(plain_install / "alephant-otel"), "demo"], env=_demo_env(home),
                              capture_output=True, text=True, timeout=180, check=False)
        assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    assert "through httpx2" in done.stdout
    assert "Refund for order 1042" in done.stdout
    assert str(data / "demo.otlp.jsonl") in done.stdout
    match = re.search(r"demo totals \(counted in-process\): requests=(\d+) retries=(\d+) intercepted=(\d+)",
                      done.stdout)
    assert match, done.stdout
    spans = list(_request_spans(data / "demo.otlp.jsonl"))
    # The second run replaced the first's file: one run's requests, not two.
    assert int(match.group(1)) == len(spans) >= 15
    assert (int(match.group(2)), int(match.group(3))) == (1, 1)
    # The user's own trace file (the one their apps write) never gets the demo's sessions.
    assert not (data / "traces.otlp.jsonl").exists()
    # What to do next names the web view, with the demo's file.
    assert f"alephant-otel ui --source {data / 'demo.otlp.jsonl'}" in done.stdout
    # A bare `sessions list` afterwards (no trace file of the user's yet) points at the demo's file.
    bare = subprocess.run([str(plain_install / "alephant-otel"), "sessions", "list"], env=_demo_env(home),
                          capture_output=True, text=True, timeout=60, check=False)
    assert bare.returncode == 1
    assert bare.stderr.count("\n") == 1, bare.stderr
    assert f"no trace file at {data / 'traces.otlp.jsonl'}" in bare.stderr
    assert f"--source {data / 'demo.otlp.jsonl'}" in bare.stderr


@pytest.mark.parametrize(("target", "reason"), [
    ("/dev/full", "it is not a regular file"),
    ("{tmp}", "it is a directory"),
    ("/sys/alephant-demo.jsonl", "Permission denied"),
])
def test_demo_that_cannot_write_says_so_in_one_line(target: str, reason: str, tmp_path: Path) -> None:
    trace_file = target.format(tmp=tmp_path)
    started = time.monotonic()
    done = subprocess.run([str(BIN / "alephant-otel"), "demo", "--trace-file", trace_file],
                          env=_demo_env(tmp_path), capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert done.stderr == f"alephant-otel: cannot write the demo trace file {trace_file}: {reason}\n"
