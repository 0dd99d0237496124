"""Benchmark: ``alephant-otel sessions`` on ClickHouse (chDB) at 1M and 10M request spans.

Run by hand (not by the test suite; needs ``bash scripts/install-chdb.sh``)::

    .venv/bin/python benchmarks/bench_clickhouse.py [--spans 1000000 10000000] [--runs 3]

For each size it creates ``otel_traces`` with the exporter's own DDL in chDB
(served over ClickHouse's HTTP interface by ``tests/chdb_server.py``, as in
the tests), generates the spans in SQL with ``numbers()`` (sessions of 20
request spans and one session span, 3 paths, 4 agents, the attribute set
the package writes, values as the exporter stores them), then adds the
sessions roll-up (``collector-config/clickhouse/sessions_rollup.sql``: its
back-fill statement fills it). The databases are kept in ``--cache`` (10M
spans take minutes to generate) and reused while their row count matches;
the roll-up is rebuilt when its SQL changed. Each question is asked by the
real CLI in a fresh process (``--json``), median of ``--runs``, with the
roll-up and without it (``?table=`` pointing at a view of the same spans
that has none):

- ``sessions list --limit 20 --sort cost``;
- ``sessions vitals --limit 20 --sort cost``;
- ``sessions show <one session>``;

with the client's peak RSS (``wait4``), the bytes the server sent and the
seconds it spent on the process's queries (the adapter's log). At the first
size it also writes the same spans as an OTLP/JSON-lines trace file (from
the same table, in SQL, streamed to disk) and times ``sessions list`` on it:
the file reader. Prints a markdown table.

Targets (2 cores): list over 10M <= 2 s with the roll-up, <= 15 s without;
show <= 0.5 s; client peak RSS <= 100 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _chdb import PASSWORD, ROLLUP_SQL, USER, ChServer, chdb_missing  # noqa: E402

ROLLUP_SUFFIX = "_sessions"

T0 = 1_750_000_000_000_000_000
PER_SESSION = 20
CLI = str(Path(sys.executable).parent / "alephant-otel")

#: One request span per number: session, run, agent, path, usage and cost from the number.
_REQUEST = f"""
SELECT
    fromUnixTimestamp64Nano(toInt64({T0} + number * 1000000)) AS Timestamp,
    lower(hex(MD5(toString(intDiv(number, {PER_SESSION}))))) AS TraceId,
    lower(hex(substring(MD5(concat('s', toString(number))), 1, 8))) AS SpanId,
    '' AS ParentSpanId, '' AS TraceState, 'chat gpt-4o-mini' AS SpanName, 'Client' AS SpanKind,
    'bench' AS ServiceName, map('service.name', 'bench') AS ResourceAttributes,
    'alephant_otel' AS ScopeName, '1.0' AS ScopeVersion,
    map('alephant.span.kind', 'request',
        'alephant.session.id', concat('sess_', toString(intDiv(number, {PER_SESSION}))),
        'alephant.session.path',
        ['/support/triage', '/billing/invoice', '/sales/quote'][intDiv(number, {PER_SESSION}) % 3 + 1],
        'alephant.session.name', 'bench session',
        'alephant.agent.id', ['triage', 'search', 'writer', 'billing'][number % 4 + 1],
        'alephant.run.id', concat('run_', toString(intDiv(number, 5))),
        'alephant.request.id', concat('req_', toString(number)),
        'gen_ai.operation.name', 'chat', 'gen_ai.provider.name', 'openai',
        'gen_ai.request.model', 'openai/gpt-4o-mini', 'gen_ai.response.model', 'gpt-4o-mini',
        'gen_ai.usage.input_tokens', toString(100 + number % 900),
        'gen_ai.usage.output_tokens', toString(20 + number % 300),
        'alephant.cost.usd', toString((100 + number % 900) * 1.5e-7 + (20 + number % 300) * 6e-7),
        'alephant.cost.source', 'gateway',
        'alephant.retry.attempt', toString(if(number % 97 = 0, 1, 0)),
        'http.response.status_code', toString(if(number % 211 = 0, 429, 200))) AS SpanAttributes,
    toUInt64(50000000 + (number % 37) * 10000000) AS Duration,
    if(number % 211 = 0, 'Error', 'Unset') AS StatusCode, '' AS StatusMessage,
    [] AS `Events.Timestamp`, [] AS `Events.Name`, [] AS `Events.Attributes`,
    [] AS `Links.TraceId`, [] AS `Links.SpanId`, [] AS `Links.TraceState`, [] AS `Links.Attributes`
FROM numbers({{n}})
"""

#: One session span per session, ended, with its roll-up attributes left out (the totals come from requests).
_SESSION = f"""
SELECT
    fromUnixTimestamp64Nano(toInt64({T0} + number * {PER_SESSION} * 1000000)) AS Timestamp,
    lower(hex(MD5(toString(number)))) AS TraceId,
    lower(hex(substring(MD5(concat('S', toString(number))), 1, 8))) AS SpanId,
    '' AS ParentSpanId, '' AS TraceState, 'session' AS SpanName, 'Internal' AS SpanKind,
    'bench' AS ServiceName, map('service.name', 'bench') AS ResourceAttributes,
    'alephant_otel' AS ScopeName, '1.0' AS ScopeVersion,
    map('alephant.span.kind', 'session', 'alephant.session.id', concat('sess_', toString(number)),
        'alephant.session.path', ['/support/triage', '/billing/invoice', '/sales/quote'][number % 3 + 1],
        'alephant.session.name', 'bench session') AS SpanAttributes,
    toUInt64({PER_SESSION} * 1000000 + 500000000) AS Duration, 'Unset' AS StatusCode, '' AS StatusMessage,
    [] AS `Events.Timestamp`, [] AS `Events.Name`, [] AS `Events.Attributes`,
    [] AS `Links.TraceId`, [] AS `Links.SpanId`, [] AS `Links.TraceState`, [] AS `Links.Attributes`
FROM numbers({{sessions}})
"""

#: The same spans as OTLP/JSON lines (512 spans a line, as a BatchSpanProcessor exports them).
_OTLP = """
SELECT concat('{"resourceSpans":[{"resource":{"attributes":',
              '[{"key":"service.name","value":{"stringValue":"bench"}}]},',
              '"scopeSpans":[{"scope":{"name":"alephant_otel"},"spans":[',
              arrayStringConcat(groupArray(j), ','), ']}]}]}')
FROM (
    SELECT rowNumberInAllBlocks() AS i, concat('{"traceId":"', TraceId, '","spanId":"', SpanId, '","name":"', SpanName,
        '","kind":', if(SpanKind = 'Client', '3', '1'),
        ',"startTimeUnixNano":"', toString(toUnixTimestamp64Nano(Timestamp)),
        '","endTimeUnixNano":"', toString(toUnixTimestamp64Nano(Timestamp) + Duration),
        '","status":{"code":', if(StatusCode = 'Error', '2', '0'), '},"attributes":[',
        arrayStringConcat(arrayMap(kv -> concat('{"key":"', kv.1, '","value":',
            multiIf(kv.1 IN ('gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'alephant.retry.attempt',
                             'http.response.status_code'), concat('{"intValue":"', kv.2, '"}'),
                    kv.1 = 'alephant.cost.usd', concat('{"doubleValue":', kv.2, '}'),
                    concat('{"stringValue":"', kv.2, '"}')), '}'),
            arrayZip(mapKeys(SpanAttributes), mapValues(SpanAttributes))), ','), ']}') AS j
    FROM {db}.otel_traces
)
GROUP BY intDiv(i, 512) ORDER BY intDiv(i, 512)
"""


def _run(args: list[str], log: Path) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS (MB), bytes the server sent and seconds it spent answering (its queries,
    the adapter's log), of one CLI run in a fresh process."""
    before = log.stat().st_size if log.exists() else 0
    env = dict(os.environ, CLICKHOUSE_USER=USER, CLICKHOUSE_PASSWORD=PASSWORD, COLUMNS="200")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([CLI, *args], stdout=out, stderr=err, env=env)
        # wait4, not wait: the child's own peak RSS (Popen has not reaped it).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(args)} failed: {err.read().decode()}")
    sent, server_s = 0, 0.0
    if log.exists():
        with log.open("rb") as fh:
            fh.seek(before)
            entries = [json.loads(line) for line in fh.read().splitlines() if line.strip()]
        sent = sum(e["bytes"] for e in entries)
        server_s = sum(e.get("seconds", 0.0) for e in entries)
    return wall, usage.ru_maxrss / 1024, sent, server_s


def _median(runs: int, args: list[str], log: Path) -> tuple[float, float, int, float]:
    results = [_run(args, log) for _ in range(runs)]
    return (
        statistics.median(r[0] for r in results),
        max(r[1] for r in results),
        int(statistics.median(r[2] for r in results)),
        statistics.median(r[3] for r in results),
    )


def _prepare(server: ChServer, workdir: Path, db: str, n: int) -> None:
    """The database ``db`` with ``n`` request spans and the current roll-up, generated or reused."""
    sessions = n // PER_SESSION
    have = server.sql(f"SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'otel_traces'").strip()
    rows = server.sql(f"SELECT count() FROM {db}.otel_traces").strip() if have == "1" else "0"
    if rows != str(n + sessions):
        t = time.perf_counter()
        server.sql(f"DROP DATABASE IF EXISTS {db}")
        server.create(db)
        server.sql(f"INSERT INTO {db}.otel_traces {_REQUEST.format(n=n)}", timeout=3600)
        server.sql(f"INSERT INTO {db}.otel_traces {_SESSION.format(sessions=sessions)}")
        print(f"{n:,} spans: generated in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    # The roll-up is rebuilt when its SQL changed since it was filled.
    digest = hashlib.sha256(ROLLUP_SQL.read_bytes()).hexdigest()
    mark = workdir / f"{db}.rollup-sha256"
    if not mark.exists() or mark.read_text() != digest or rows != str(n + sessions):
        t = time.perf_counter()
        server.drop_rollup(db)
        server.add_rollup(db, timeout=3600)
        server.sql(f"OPTIMIZE TABLE {db}.otel_traces{ROLLUP_SUFFIX} FINAL", timeout=3600)
        mark.write_text(digest)
        print(f"{n:,} spans: roll-up filled in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    # The same spans under another name, without a roll-up: the raw path.
    server.sql(f"CREATE VIEW IF NOT EXISTS {db}.spans AS SELECT * FROM {db}.otel_traces")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--file-runs", type=int, default=1, help="runs of the file reader (minutes each at 1M; 0: none)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alephant-otel" / "bench-clickhouse",
        help="keep the generated databases here and reuse them (10M spans take minutes to generate)",
    )
    ap.add_argument("--no-cache", action="store_true", help="generate in a temporary directory, dropped after")
    ap.add_argument("--prepare", action="store_true", help="only generate the databases (and roll-ups), no timing")
    args = ap.parse_args()
    why = chdb_missing()
    if why:
        raise SystemExit(why)
    rows = []
    with contextlib.ExitStack() as stack:
        if args.no_cache:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ch-")))
        else:
            workdir = args.cache
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "port").unlink(missing_ok=True)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ch-file-"))
        server = ChServer(workdir)
        try:
            for i, n in enumerate(args.spans):
                db = f"bench{n}"
                sessions = n // PER_SESSION
                _prepare(server, workdir, db, n)
                if args.prepare:
                    continue
                base = server.url(db)
                log = server.query_log
                label = f"{n / 1e6:g}M"
                # A bound on each query long enough for the spans path at 10M (the default is 30 s).
                raw = base + "?table=spans&timeout=900"
                rolled = base + "?timeout=900"
                top = ["--json", "--limit", "20", "--sort", "cost", "--source"]
                show = ["sessions", "show", f"sess_{sessions // 2}", "--json", "--source"]
                for what, cli_args in (
                    ("list, roll-up", ["sessions", "list", *top, rolled]),
                    ("list, no roll-up", ["sessions", "list", *top, raw]),
                    ("vitals, roll-up", ["sessions", "vitals", *top, rolled]),
                    ("vitals, no roll-up", ["sessions", "vitals", *top, raw]),
                    ("show, roll-up", [*show, rolled]),
                    ("show, no roll-up", [*show, raw]),
                ):
                    wall, rss, sent, server_s = _median(args.runs, cli_args, log)
                    rows.append((label, what, wall, server_s, rss, sent))
                    print(rows[-1], file=sys.stderr)
                if i == 0 and args.file_runs:
                    trace = Path(tmp) / "bench.otlp.jsonl"
                    # Streamed to the file: held in this process, its 1.4 GB would be the peak RSS
                    # of every child started after (a fork keeps its parent's high-water mark).
                    server.sql_to_file(_OTLP.replace("{db}", db) + " FORMAT TSVRaw", trace)
                    wall, rss, _, _ = _median(
                        args.file_runs,
                        ["sessions", "list", "--json", "--limit", "20", "--sort", "cost", "--source", str(trace)],
                        log,
                    )
                    rows.append((label, "list, trace file", wall, 0.0, rss, trace.stat().st_size))
                    print(rows[-1], file=sys.stderr)
                    trace.unlink()
                if args.no_cache:
                    server.sql(f"DROP DATABASE {db}")
        finally:
            server.stop()
    print("| spans | question | wall (median) | of which in the server | client peak RSS | bytes from the server |")
    print("|---|---|---:|---:|---:|---:|")
    for label, what, wall, server_s, rss, sent in rows:
        size = f"{sent / 1e6:.1f} MB read" if what == "list, trace file" else f"{sent:,} B"
        in_server = "-" if what == "list, trace file" else f"{server_s:.2f} s"
        print(f"| {label} | {what} | {wall:.2f} s | {in_server} | {rss:.0f} MB | {size} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
