"""The peers benchmark: what each tracing stack adds to a real ``openai`` SDK call, in instructions.

    .venv/bin/python benchmarks/run.py --peers                 # every arm whose environment exists
    .venv/bin/python benchmarks/run.py --peers --arms bare,alephant,openai_v2 --requests 200
    .venv/bin/python benchmarks/run.py --peers --smoke         # a few requests per arm, no callgrind (CI)

Peer environments come from ``bash benchmarks/peers_setup.sh`` (``benchmarks/.venvs/<peer>``); an
arm whose environment is missing is skipped with a note. ``bare``, ``otel`` and ``alephant`` run
in the project's own environment, which has the same ``openai``, ``httpx2`` and OpenTelemetry SDK.

The primary figure is instructions per request from ``valgrind --tool=callgrind``: each arm runs
once under callgrind with instrumentation off (``--instr-atstart=no``) through start-up and a
warm-up, and switched on (``callgrind_control -i on``, all threads) for N requests and the span
export that follows them, then off. Instructions do not move with the machine's load as CPU time
does (a rerun agrees within a fraction of a percent). CPU-time medians over interleaved batches
(``time.process_time``, as ``run.py`` measures) are reported beside them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
WORKER = HERE / "_peers.py"

#: Arm -> what it is. The first three run in the project's environment; the others in their peer's.
ARMS: dict[str, str] = {
    "bare": "openai SDK on httpx2, no instrumentation",
    "otel": "OTel httpx2 instrumentation",
    "alephant": "alephant-otel + OTel httpx2",
    "openai_v2": "opentelemetry-instrumentation-openai-v2 + OTel httpx2",
    "traceloop": "Traceloop opentelemetry-instrumentation-openai + OTel httpx2",
    "openinference": "OpenInference openinference-instrumentation-openai + OTel httpx2",
    "logfire": "Logfire instrument_openai + OTel httpx2",
    "openai_v2_alone": "opentelemetry-instrumentation-openai-v2 alone",
    "traceloop_alone": "Traceloop opentelemetry-instrumentation-openai alone",
    "openinference_alone": "OpenInference alone",
    "logfire_alone": "Logfire instrument_openai alone",
    "otel_otlp": "OTel httpx2, real OTLP/HTTP exporter to loopback",
    "alephant_otlp": "alephant-otel + OTel httpx2, real OTLP/HTTP exporter to loopback",
    "openai_v2_otlp": "openai-v2 + OTel httpx2, real OTLP/HTTP exporter to loopback",
    "alephant_metrics": "alephant-otel + OTel httpx2, real SDK MeterProvider",
    "alephant_content": "alephant-otel + OTel httpx2, content capture on (configure(capture_content=True))",
    "openai_v2_metrics": "openai-v2 + OTel httpx2, real SDK MeterProvider",
}
OWN = ("bare", "otel", "alephant")
#: The like-for-like reference of the targets: alephant's added cost over openai-v2's.
REFERENCE = "openai_v2"
FLOOR, AIM = 1.0, 0.9


def base_of(arm: str) -> str:
    for suffix in ("_alone", "_otlp", "_metrics", "_content"):
        if arm.endswith(suffix):
            return arm[: -len(suffix)]
    return arm


def python_for(arm: str) -> Path | None:
    """The interpreter of ``arm``'s environment, or None when it has not been set up."""
    base = base_of(arm)
    if base in OWN:
        return Path(sys.executable)
    py = VENVS / base / "bin" / "python"
    return py if py.exists() else None


@dataclass
class ArmResult:
    name: str
    records: dict[str, Any] = field(default_factory=dict)
    instructions: float | None = None  # per request
    cpu_us: list[float] = field(default_factory=list)
    error: str = ""


def _run(argv: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def records(arm: str, url: str) -> dict[str, Any]:
    py = python_for(arm)
    assert py is not None
    out = _run([str(py), str(WORKER), arm, url, "records"], timeout=300)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def callgrind(arm: str, url: str, requests: int, warmup: int, keep: Path | None) -> float:
    """Instructions per request of ``arm`` (all threads), from one callgrind run."""
    py = python_for(arm)
    assert py is not None
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / f"callgrind.{arm}.out"
        _run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out_file}",
                str(py),
                str(WORKER),
                arm,
                url,
                "callgrind",
                str(requests),
                str(warmup),
            ],
            timeout=1800,
            # Fixed string hashing: set and dict layouts, and so instruction counts, repeat run to run.
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        text = out_file.read_text(errors="replace")
        match = re.search(r"^totals:\s+(\d+)", text, re.M)
        if match is None:
            raise RuntimeError(f"no totals in {out_file.name}")
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(out_file, keep / out_file.name)
        return int(match.group(1)) / requests


def cpu_times(arms: Sequence[str], url: str, rounds: int, n: int) -> dict[str, list[float]]:
    """Client CPU µs per request, batches interleaved across arms, the order rotated each round."""
    sys.path.insert(0, str(HERE))
    from _harness import Worker, interleave

    workers = []
    try:
        for arm in arms:
            py = python_for(arm)
            assert py is not None
            workers.append(Worker("", arm, url, argv=[str(py), str(WORKER), arm, url, "serve"]))
        out = interleave(workers, rounds, n)
    finally:
        for w in workers:
            w.close()
    return {arm: [x["cpu_us"] for x in out[arm]] for arm in arms}


def _records_cell(rec: dict[str, Any]) -> str:
    if not rec:
        return ""
    if rec.get("exported_by") == "otlp":
        return "as without OTLP, sent to the loopback receiver"
    parts = [f"{rec['spans']} span{'s' if rec['spans'] != 1 else ''}, {rec['attributes']} attributes"]
    parts += [name for name in ("tokens", "cost", "ids", "content") if rec.get(name)]
    if rec.get("wire_headers"):
        parts.append(f"{rec['wire_headers']} headers")
    return ", ".join(parts)


def _fmt_m(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x / 1e6:+.2f} M" if signed else f"{x / 1e6:.2f} M"


def render(results: dict[str, ArmResult], requests: int, notes: list[str]) -> tuple[str, bool | None]:
    """The peers table, and whether alephant meets the floor (None: not measured)."""
    bare = results.get("bare")
    base_i = bare.instructions if bare else None
    base_c = statistics.median(bare.cpu_us) if bare and bare.cpu_us else None

    def added(r: ArmResult | None) -> float | None:
        if r is None or r.instructions is None or base_i is None:
            return None
        return r.instructions - base_i

    def reference(name: str) -> float | None:
        """openai-v2's added instructions with the same exporter and meter set-up as ``name``."""
        suffix = name[len(base_of(name)) :]
        return added(results.get(REFERENCE + (suffix if suffix in ("_otlp", "_metrics") else "")))

    ref = reference(REFERENCE)
    lines = [
        "| arm | instructions / request | added over bare | vs openai-v2 added (same export) | "
        "CPU µs / request (added) | records per request |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        a = added(r)
        like = reference(name)
        ratio = f"{a / like:.3f}x" if a is not None and like and name != "bare" else ""
        cpu = ""
        if r.cpu_us:
            med = statistics.median(r.cpu_us)
            cpu = f"{med:.0f}" + (f" ({med - base_c:+.0f})" if base_c is not None and name != "bare" else "")
        rec = _records_cell(r.records) if not r.error else f"not run: {r.error}"
        lines.append(
            f"| {name}: {ARMS[name]} | {_fmt_m(r.instructions)} | {_fmt_m(a, True) if name != 'bare' else ''} | "
            f"{ratio} | {cpu} | {rec} |"
        )
    verdict: bool | None = None
    ours = added(results.get("alephant"))
    if ours is not None and ref:
        ratio = ours / ref
        verdict = ratio <= FLOOR
        lines.append("")
        lines.append(
            f"alephant + httpx2 adds {ratio:.3f}x what openai-v2 + httpx2 adds: floor ≤ {FLOOR:.1f}x "
            f"{'PASS' if verdict else '**FAIL**'}, aim ≤ {AIM:.1f}x {'PASS' if ratio <= AIM else 'missed'}."
        )
    lines.append("")
    lines.append(
        f"Instructions: callgrind, {requests} requests after a warm-up, all threads, span export included. "
        "CPU: medians of interleaved batches (`time.process_time`), which move with the machine's load."
    )
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n", verdict


def stack_notes(stacks: dict[str, dict[str, str]]) -> list[str]:
    """A note per package the arms ran at different versions (their figures are then not like for like)."""
    notes = []
    for dist in sorted({d for st in stacks.values() for d in st}):
        seen: dict[str, list[str]] = {}
        for arm, st in stacks.items():
            seen.setdefault(st.get(dist, "-"), []).append(arm)
        if len(seen) > 1:
            which = "; ".join(f"{v} in {', '.join(arms)}" for v, arms in sorted(seen.items()))
            notes.append(
                f"**Not like for like: the arms ran different {dist} versions** ({which}); "
                "rerun `bash benchmarks/peers_setup.sh` with the pins of the project's environment."
            )
    return notes


def run_peers(
    url: str,
    *,
    arms: Sequence[str] | None,
    requests: int,
    warmup: int,
    rounds: int,
    batch: int,
    use_callgrind: bool,
    keep: Path | None,
) -> tuple[str, bool | None, dict[str, ArmResult]]:
    """Run every available arm; returns (markdown table, floor verdict, results)."""
    wanted = list(arms) if arms else list(ARMS)
    unknown = [a for a in wanted if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arms: {', '.join(unknown)} (known: {', '.join(ARMS)})")
    notes: list[str] = []
    results: dict[str, ArmResult] = {}
    for arm in wanted:
        results[arm] = ArmResult(arm)
        if python_for(arm) is None:
            results[arm].error = f"no environment (bash benchmarks/peers_setup.sh {base_of(arm)})"
    live = [a for a in wanted if not results[a].error]
    for arm in live:
        try:
            results[arm].records = records(arm, url)
        except Exception as exc:
            results[arm].error = str(exc).splitlines()[-1][:200]
    live = [a for a in live if not results[a].error]
    notes += stack_notes({a: results[a].records.get("stack") or {} for a in live})
    if use_callgrind:
        if shutil.which("valgrind") is None:
            notes.append("valgrind is not installed: no instruction counts (apt-get install valgrind).")
        else:
            with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
                futures = {a: pool.submit(callgrind, a, url, requests, warmup, keep) for a in live}
                for arm, fut in futures.items():
                    try:
                        results[arm].instructions = fut.result()
                    except Exception as exc:
                        results[arm].error = f"callgrind: {str(exc).splitlines()[-1][:200]}"
    if rounds > 0:
        for arm, cpu in cpu_times([a for a in live if not results[a].error], url, rounds, batch).items():
            results[arm].cpu_us = cpu
    if "logfire" in results and not results["logfire"].error:
        notes.append(
            "Logfire's instrument_openai suppresses other instrumentation inside the call by default, so "
            "OTel's httpx2 instrumentation runs but makes no span of its own there."
        )
    table, verdict = render(results, requests, notes)
    return table, verdict, results


def versions() -> str:
    """The versions of what each peer environment ran, from its freeze.txt."""
    out = []
    for base in ("openai_v2", "traceloop", "openinference", "logfire"):
        freeze = VENVS / base / "freeze.txt"
        if freeze.exists():
            pins = dict(
                line.split("==", 1) for line in freeze.read_text().splitlines() if "==" in line and line[0] != "#"
            )
            want = {
                "openai_v2": "opentelemetry-instrumentation-openai-v2",
                "traceloop": "opentelemetry-instrumentation-openai",
                "openinference": "openinference-instrumentation-openai",
                "logfire": "logfire",
            }[base]
            out.append(f"{want} {pins.get(want, '?')}")
    return ", ".join(out)
