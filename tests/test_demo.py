"""`alephant-otel demo`: runs end to end and prints totals that equal what is in the trace file."""

from __future__ import annotations

import re
import subprocess

import pytest
from _util import BIN, clean_env

from alephant_otel._tracefile import iter_trace_file


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
