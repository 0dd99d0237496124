"""Benchmark: ``alephant-otel sessions list`` over a 1,000,000-span trace file.

Run by hand (not by the test suite)::

    .venv/bin/python benchmarks/bench_analytics.py [--spans 1000000] [--runs 3] [--keep]

It writes an OTLP/JSON-lines trace file shaped like the library's output
(sessions of 1 session span, 3 runs, one nested, and 16 request spans with
the full request attribute set; spans in batches of up to 512 per line, as a
``BatchSpanProcessor`` exports them), then runs, each in a fresh process:

- ``sessions list --json --limit 20`` as installed (the whole file is read
  and rebuilt; only the output is short): orjson when installed, the file
  parsed in worker processes (``ALEPHANT_ANALYTICS_WORKERS``, default the CPUs);
- the same with ``json`` in one process (``ALEPHANT_ANALYTICS_WORKERS=1``):
  the baseline, and its output must equal the default's;
- a bare loop of ``json.loads`` over the same lines (what one process needs
  just to decode),

interleaved round by round, and prints the median wall time, spans/s and
peak RSS (the parent's or a worker's, the larger) of each as a markdown
table, with the ratio to the serial json run. Requirement: under 15 s and
1.5 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 512
T0 = 1_750_000_000_000_000_000


def _kv(key: str, value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _span(
    rng: random.Random,
    trace_id: str,
    parent: str | None,
    name: str,
    start: int,
    dur: int,
    attrs: dict[str, object],
    kind: int = 1,
    error: bool = False,
) -> tuple[str, dict[str, object]]:
    span_id = f"{rng.getrandbits(64):016x}"
    sp: dict[str, object] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + dur),
        "attributes": [_kv(k, v) for k, v in attrs.items()],
        "status": {"code": 2, "message": "HTTP 429"} if error else {},
        "flags": 256,
    }
    if parent:
        sp["parentSpanId"] = parent
    return span_id, sp


def session_spans(rng: random.Random, i: int) -> list[dict[str, object]]:
    """One session: 1 session span, 3 runs (one nested), 16 requests = 20 spans."""
    sid = f"sess_{i:08d}"
    path = rng.choice(["/support/triage", "/support/refund", "/billing", "/search"])
    base = {
        "alephant.session.id": sid,
        "gen_ai.conversation.id": sid,
        "alephant.session.name": f"case {i}",
        "alephant.session.path": path,
    }
    tid = f"{rng.getrandbits(128):032x}"
    start = T0 + i * 2_000_000_000
    out: list[dict[str, object]] = []
    sess_id, sess = _span(
        rng,
        tid,
        None,
        "session",
        start,
        10_000_000_000,
        {**base, "alephant.span.kind": "session", "alephant.total.requests": 16, "alephant.total.cost.usd": 0.01},
    )
    out.append(sess)
    parent_span, parent_run = sess_id, None
    for r, agent in enumerate(("triage", "search", "writer")):
        rid = f"run_{i:08d}_{r}"
        run_attrs = {
            **base,
            "alephant.agent.id": agent,
            "gen_ai.agent.id": agent,
            "alephant.run.id": rid,
            "alephant.span.kind": "run",
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
        }
        if parent_run:
            run_attrs["alephant.run.parent_id"] = parent_run
        run_span, run = _span(
            rng, tid, parent_span, f"invoke_agent {agent}", start + r * 1000, 3_000_000_000, run_attrs
        )
        out.append(run)
        for q in range(16 // 3 + (1 if r == 0 else 0)):
            inp, outp = rng.randint(50, 3000), rng.randint(10, 800)
            attrs = {
                **base,
                "alephant.agent.id": agent,
                "gen_ai.agent.id": agent,
                "alephant.run.id": rid,
                "alephant.span.kind": "request",
                "alephant.request.id": f"req_{rng.getrandbits(80):020x}",
                "http.request.method": "POST",
                "url.full": "https://ai.alephant.io/v1/chat/completions",
                "server.address": "ai.alephant.io",
                "server.port": 443,
                "network.protocol.version": "1.1",
                "http.response.status_code": 200,
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "openai/gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.id": f"chatcmpl-{i}-{q}",
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": outp,
                "alephant.cost.usd": inp * 1.5e-7 + outp * 6e-7,
                "alephant.cost.source": "price_table",
            }
            if parent_run:
                attrs["alephant.run.parent_id"] = parent_run
            if q == 1 and r == 1:
                attrs["alephant.retry.attempt"] = 1
            _, req = _span(
                rng,
                tid,
                run_span,
                "chat openai/gpt-4o-mini",
                start + r * 1000 + q * 100,
                rng.randint(200_000_000, 3_000_000_000),
                attrs,
                kind=3,
            )
            out.append(req)
        if r == 0:
            parent_span, parent_run = run_span, rid
    return out


def write_file(path: Path, spans: int) -> int:
    rng = random.Random(42)
    resource = {
        "attributes": [
            _kv("service.name", "bench"),
            _kv("telemetry.sdk.language", "python"),
            _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.version", "1.45.2"),
        ]
    }
    scope = {"name": "opentelemetry.instrumentation.httpx", "version": "0.66b2"}
    written = 0
    batch: list[dict[str, object]] = []
    i = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < spans:
            for sp in session_spans(rng, i):
                batch.append(sp)
                written += 1
                if len(batch) == BATCH or written == spans:
                    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": batch}]}]}
                    fh.write(json.dumps(doc, separators=(",", ":")) + "\n")
                    batch = []
                if written == spans:
                    break
            i += 1
    return written


_CHILD_LIST = """
import resource, sys, time
from alephant_otel.analytics import _fastfile
if sys.argv[2] == "serial-json":
    import json
    _fastfile.decoder = ("json", json.loads)
from alephant_otel.cli._main import main
t = time.perf_counter()
code = main(["sessions", "list", "--source", sys.argv[1], "--json", "--limit", "20", "--sort", "cost"])
dt = time.perf_counter() - t
rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
sys.stderr.write(f"RESULT {dt} {rss} {code}\\n")
"""

_CHILD_LOADS = """
import gc, json, resource, sys, time
gc.disable()
t = time.perf_counter()
n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        doc = json.loads(line)
        n += 1
dt = time.perf_counter() - t
sys.stderr.write(f"RESULT {dt} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} 0\\n")
"""

#: name -> (child code, mode, extra environment)
_RUNS: dict[str, tuple[str, str, dict[str, str]]] = {
    "sessions list (default)": (_CHILD_LIST, "default", {}),
    "sessions list (serial, json)": (_CHILD_LIST, "serial-json", {"ALEPHANT_ANALYTICS_WORKERS": "1"}),
    "json.loads loop": (_CHILD_LOADS, "", {}),
}


def _iter_spans(path: Path):
    with path.open("rb") as fh:
        for line in fh:
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    yield from ss["spans"]


def measure(code: str, path: Path, mode: str, env: dict[str, str]) -> tuple[float, float, str]:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), mode], capture_output=True, text=True, env=env, check=False
    )
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    _, dt, rss_kb, _ = line.split()
    return float(dt), int(rss_kb) / 1024, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--file", type=Path, help="use (or create and keep) this trace file")
    parser.add_argument("--no-baseline", action="store_true", help="skip the serial json run (the slowest)")
    args = parser.parse_args()

    # The children import alephant_otel as this interpreter does (the venv's editable install).
    env = dict(os.environ)
    env.pop("ALEPHANT_ANALYTICS_WORKERS", None)
    tmp = tempfile.TemporaryDirectory()
    path = args.file or Path(tmp.name) / "bench.jsonl"
    if not path.exists():
        t = time.perf_counter()
        n = write_file(path, args.spans)
        print(
            f"wrote {n:,} spans to {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s",
            file=sys.stderr,
        )
    spans = sum(1 for _ in _iter_spans(path)) if args.file else args.spans
    runs = {k: v for k, v in _RUNS.items() if not (args.no_baseline and "serial" in k)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    outputs: dict[str, str] = {}
    for _ in range(args.runs):
        # Interleaved, so that every variant sees the same machine noise.
        for name, (code, mode, extra) in runs.items():
            dt, rss, out = measure(code, path, mode, {**env, **extra})
            results[name].append((dt, rss))
            outputs[name] = out
    doc = json.loads(outputs["sessions list (default)"])
    if "sessions list (serial, json)" in outputs and json.loads(outputs["sessions list (serial, json)"]) != doc:
        raise SystemExit("the default and the serial json reads gave different output")
    from alephant_otel.analytics import _fastfile

    workers = _fastfile.worker_count()
    base_name = "sessions list (serial, json)" if "sessions list (serial, json)" in results else "json.loads loop"
    base = statistics.median(d for d, _ in results[base_name])
    print(
        f"\n{spans:,} spans, {path.stat().st_size / 1e6:.0f} MB, {doc['sessions_seen']:,} sessions, "
        f"median of {args.runs} runs, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"default reader: {_fastfile.decoder[0]}, {workers} worker process(es)\n"
    )
    print(f"| run | median s | min-max s | spans/s | peak RSS MB | ratio to {base_name} |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        times = [d for d, _ in rows]
        dt = statistics.median(times)
        rss = max(r for _, r in rows)
        print(
            f"| {name} | {dt:.2f} | {min(times):.2f}-{max(times):.2f} | {spans / dt:,.0f} | {rss:,.0f} "
            f"| {dt / base:.2f}x |"
        )
    default = statistics.median(d for d, _ in results["sessions list (default)"])
    peak = max(r for _, r in results["sessions list (default)"])
    ok = default < 15 and peak < 1536
    print(f"\ntarget: under 15 s and 1.5 GB for 1M spans: {'PASS' if ok else 'FAIL'} ({default:.2f} s, {peak:,.0f} MB)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
