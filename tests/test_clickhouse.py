"""ClickHouse as a source: the sessions computed in the server equal the trace-file reader's, field for field.

A real engine (chDB, ``scripts/install-chdb.sh``) behind ClickHouse's HTTP
interface (``tests/chdb_server.py``), the exporter's own DDL
(``collector-config/clickhouse/exporter_traces_table.sql.tmpl``), rows
converted as the exporter converts spans (``fixtures/clickhouse_rows.py``),
and the real client (``clickhouse-connect``) in the package. Every data set
is loaded twice: into a database with the roll-up of
``collector-config/clickhouse/sessions_rollup.sql`` (filled by its
materialized view as the rows arrive) and into one without.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from _chdb import PASSWORD, USER, ChServer, chdb_missing
from _util import BIN, clean_env
from fixtures.analytics_data import (
    MS,
    T0,
    Req,
    RunSpec,
    SessionSpec,
    headless_session,
    make_spans,
    standard_file,
    support_session,
    write_trace_file,
)
from fixtures.clickhouse_rows import go_float, rows_from_file
from fixtures.ui_data import showcase_sessions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_tools import WRITER as TOOLS_WRITER

from alephant_otel.analytics import _chrollup
from alephant_otel.analytics._answer import list_sessions, session_vitals, show_session
from alephant_otel.analytics._breakdown import breakdown
from alephant_otel.analytics._clickhouse import ClickHouseSource
from alephant_otel.analytics._report import list_json, show_json, vitals_json
from alephant_otel.analytics._summary import Selection
from alephant_otel.analytics._vitals import VitalsConfig

pytestmark = pytest.mark.xdist_group("clickhouse")

NOW = T0 + 3600 * 10**9
ROOT = Path(__file__).resolve().parent.parent


class Data:
    """The chDB server and the data sets in it: name -> trace file; each in ``<name>_raw`` and ``<name>_rollup``."""

    def __init__(self, server: ChServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.files: dict[str, Path] = {}
        self.sources: dict[str, ClickHouseSource] = {}
        self.count = 0

    def add(self, name: str, trace_file: Path) -> None:
        rows = rows_from_file(trace_file)
        for db, rollup in ((f"{name}_raw", False), (f"{name}_rollup", True)):
            self.server.create(db)
            if rollup:
                self.server.add_rollup(db)
            self.server.load(rows, db)
        self.files[name] = trace_file

    def source(self, name: str, rollup: bool) -> ClickHouseSource:
        """One opened source per database (a connection and its handshake each, not one per question)."""
        key = f"{name}_{rollup}"
        if key not in self.sources:
            self.sources[key] = ClickHouseSource(self.url(name, rollup))
        return self.sources[key]

    def url(self, name: str, rollup: bool, *, password: bool = True, **kw: Any) -> str:
        """The source (with the credentials in it unless ``password`` is false: then from the environment)."""
        return self.server.url(f"{name}_{'rollup' if rollup else 'raw'}", password=password, **kw)


def _corrupt_file(path: Path) -> Path:
    """The standard sessions with corrupt numbers: a NaN cost, an infinite token count, a cost that is text
    (not a number: ignored, not counted), and impossible ones (negative, over the ceiling, a boolean)."""
    spans = make_spans([support_session(), headless_session()])
    write_trace_file(path, spans)
    lines = path.read_text().splitlines()
    out = []
    done = 0
    negative_total = False
    for line in lines:
        doc = json.loads(line)
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    for kv in sp.get("attributes", []):
                        if kv["key"] == "alephant.cost.usd" and done == 0:
                            kv["value"] = {"doubleValue": "NaN"}
                            done += 1
                        elif kv["key"] == "gen_ai.usage.input_tokens" and done == 1:
                            kv["value"] = {"doubleValue": "Infinity"}
                            done += 1
                        elif kv["key"] == "alephant.cost.usd" and done == 2:
                            kv["value"] = {"stringValue": "not a number"}
                            done += 1
                        # Impossible, so dropped and counted too: a negative cost, a token count
                        # over the ceiling, a boolean where a count belongs, a negative roll-up total.
                        elif kv["key"] == "alephant.cost.usd" and done == 3:
                            kv["value"] = {"doubleValue": -0.5}
                            done += 1
                        elif kv["key"] == "gen_ai.usage.output_tokens" and done == 4:
                            kv["value"] = {"intValue": "2000000000"}
                            done += 1
                        elif kv["key"] == "gen_ai.usage.input_tokens" and done == 5:
                            kv["value"] = {"boolValue": True}
                            done += 1
                        elif kv["key"] == "alephant.total.requests" and not negative_total:
                            kv["value"] = {"intValue": "-3"}
                            negative_total = True
        out.append(json.dumps(doc))
    # And one request made outside any session: the list's "(no session)" line.
    doc = json.loads(lines[0])
    sp = next(
        sp
        for rs in doc["resourceSpans"]
        for ss in rs["scopeSpans"]
        for sp in ss["spans"]
        if any(kv["value"].get("stringValue") == "request" for kv in sp.get("attributes", []))
    )
    sp["spanId"], sp["traceId"] = "00000000000000aa", "000000000000000000000000000000aa"
    sp["attributes"] = [kv for kv in sp["attributes"] if "session" not in kv["key"] and "conversation" not in kv["key"]]
    doc["resourceSpans"][0]["scopeSpans"] = [{"scope": {"name": "x"}, "spans": [sp]}]
    out.append(json.dumps(doc))
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    why = chdb_missing()
    if why:
        pytest.skip(why)
    workdir = tmp_path_factory.mktemp("chdb")
    server = ChServer(workdir)
    try:
        data = Data(server, workdir)
        data.add("std", standard_file(_dir(workdir, "std")))
        data.add("corrupt", _corrupt_file(_dir(workdir, "corrupt") / "traces.jsonl"))
        showcase = write_trace_file(_dir(workdir, "showcase") / "traces.jsonl", make_spans(showcase_sessions(24)))
        data.add("showcase", showcase)
        data.add("demo", _demo_file(_dir(workdir, "demo")))
        data.add("tools", _tools_file(_dir(workdir, "tools")))
        yield data
    finally:
        server.stop()


def _dir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir(exist_ok=True)
    return d


def _demo_file(d: Path) -> Path:
    """The package's own trace file: `alephant-otel demo` (the real instrumentation against its gateway emulator)."""
    path = d / "demo.otlp.jsonl"
    done = subprocess.run(
        [str(BIN / "alephant-otel"), "demo", "--trace-file", str(path)],
        env=clean_env(COLUMNS="200", HOME=str(d)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return path


def _tools_file(d: Path) -> Path:
    """Sessions with users, metadata and tool calls (paid, failed), written by the library in a real process."""
    path = d / "trace.jsonl"
    subprocess.run([sys.executable, "-c", TOOLS_WRITER, str(path)], env=clean_env(), check=True, timeout=120)
    return path


# --- equality with the file reader ---------------------------------------------------------


def _diff(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two JSON documents differ, as short lines (a failure names the field, not the whole document)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: file {a!r} != clickhouse {b!r}"]


def _unordered_traces(doc: Any) -> Any:
    # A trace file lists a session's trace ids in the order its lines arrived, and its agents in
    # the order of its run tree (depth first); a table has no arrival order and the list builds no
    # tree, so ClickHouse lists both by first activity: the same ids and agents, compared as sets.
    if isinstance(doc, dict):
        return {k: sorted(v) if k in ("trace_ids", "agents") else _unordered_traces(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_unordered_traces(x) for x in doc]
    return doc


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    a, b = _unordered_traces(a), _unordered_traces(b)
    a.pop("source"), b.pop("source")
    assert not _diff(a, b), "\n".join(_diff(a, b)[:20])


def _list_doc(source: str | ClickHouseSource, sel: Selection) -> dict[str, Any]:
    lst = list_sessions(source, sel)
    return list_json(
        lst.sessions,
        source=lst.source,
        corrupt=lst.corrupt,
        seen=lst.seen,
        corrupt_values=lst.corrupt_values,
        outside=lst.outside,
    )


def _vitals_doc(source: str | ClickHouseSource, sel: Selection) -> dict[str, Any]:
    v, lst = session_vitals(source, sel, VitalsConfig(min_peers=2))
    return vitals_json(v, source=lst.source, corrupt=lst.corrupt, seen=lst.seen, corrupt_values=lst.corrupt_values)


SELECTIONS = [
    Selection(now_ns=NOW),
    Selection(now_ns=NOW, sort="cost", limit=2),
    Selection(now_ns=NOW, sort="tokens"),
    Selection(now_ns=NOW, sort="latency", limit=5),
    Selection(now_ns=NOW, sort="requests"),
    Selection(now_ns=NOW, status="intercepted"),
    Selection(now_ns=NOW, status="completed", sort="cost"),
    Selection(now_ns=NOW, agent="search"),
    Selection(now_ns=NOW, agent="doer"),
    Selection(now_ns=NOW, path="/billing"),
    Selection(now_ns=NOW, path="/support/"),
    Selection(now_ns=NOW, min_cost=0.0001),
    Selection(now_ns=NOW, since_ns=T0 + 25_000 * MS),
    Selection(now_ns=NOW, until_ns=T0 + 25_000 * MS),
    # "Now" inside the sessions: the ones without a session span are active.
    Selection(now_ns=T0 + 20_000 * MS),
    Selection(now_ns=T0 + 20_000 * MS, status="active"),
    Selection(now_ns=NOW, user="u1", sort="cost"),
    Selection(now_ns=NOW, user="u2", limit=1),
]
NAMES = ["std", "corrupt", "showcase", "demo", "tools"]


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
@pytest.mark.parametrize("name", NAMES)
def test_list_equals_the_file_reader(ch: Data, name: str, rollup: bool) -> None:
    # Every filter on the hand-made sets; the larger ones (24 showcase sessions, the demo) with a few.
    for sel in (
        SELECTIONS if name in ("std", "corrupt", "tools") else SELECTIONS[:2] + SELECTIONS[9:10] + SELECTIONS[14:15]
    ):
        file_doc = _list_doc(str(ch.files[name]), sel)
        _same(file_doc, _list_doc(ch.source(name, rollup), sel))


def test_the_fixtures_cover_what_they_claim(ch: Data) -> None:
    # A comparison of empty answers proves nothing: the data sets hold what the rules are about.
    std = _list_doc(str(ch.files["std"]), Selection(now_ns=NOW))["sessions"]
    assert {s["status"] for s in std} == {"intercepted", "completed"}
    assert any(not s["session_span"] for s in std) and any(s["rollup_matches"] for s in std)
    assert sum(s["retries"] for s in std) and sum(s["errors"] for s in std) and sum(s["runs"] for s in std) >= 7
    corrupt = _list_doc(str(ch.files["corrupt"]), Selection(now_ns=NOW))
    assert corrupt["corrupt_values"] == 6 and corrupt["no_session"]["request_count"] == 1
    demo = _list_doc(str(ch.files["demo"]), Selection())
    assert demo["sessions"] and demo["sessions"][0]["request_count"]
    tools = _list_doc(str(ch.files["tools"]), Selection(now_ns=NOW))["sessions"]
    assert all(s["tool_calls"] == 2 and s["tool_cost_usd"] and s["user_id"] and s["metadata"] for s in tools)


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
@pytest.mark.parametrize("name", NAMES)
def test_vitals_equal_the_file_reader(ch: Data, name: str, rollup: bool) -> None:
    for sel in (SELECTIONS[0], SELECTIONS[1], SELECTIONS[9], SELECTIONS[14]):
        _same(_vitals_doc(str(ch.files[name]), sel), _vitals_doc(ch.source(name, rollup), sel))


def _groups(source: str | ClickHouseSource, by: str, sel: Selection) -> list[dict[str, Any]]:
    v, lst = session_vitals(source, sel, VitalsConfig(min_peers=2))
    return [{**asdict(g), "cost_usd": round(g.cost_usd, 12)} for g in breakdown(lst.sessions, by, v)]


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
def test_vitals_by_every_dimension_equal_the_file_reader(ch: Data, rollup: bool) -> None:
    for name in ("tools", "std", "demo"):
        for by in ("agent", "path", "user", "tool", "model", "metadata.plan", "metadata.none"):
            for sel in (Selection(now_ns=NOW), Selection(now_ns=NOW, sort="cost", limit=2)):
                want = _groups(str(ch.files[name]), by, sel)
                assert want or name != "tools", (name, by)
                assert _groups(ch.source(name, rollup), by, sel) == want, (name, by, sel)


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
@pytest.mark.parametrize("name", NAMES)
def test_show_equals_the_file_reader(ch: Data, name: str, rollup: bool) -> None:
    sel = Selection(now_ns=NOW)
    ids = [s["session_id"] for s in _list_doc(str(ch.files[name]), sel)["sessions"]]
    assert ids
    for sid in ids[:3]:
        want, wres = show_session(str(ch.files[name]), sid, sel)
        got, gres = show_session(ch.source(name, rollup), sid[:-1] if len(sid) > 8 else sid, sel)
        a = show_json(want, source="", corrupt=wres.corrupt, corrupt_values=0)
        b = show_json(got, source="", corrupt=gres.corrupt, corrupt_values=0)
        assert a == b


# --- hypothesis: generated sessions ------------------------------------------------------

_ids = st.integers(0, 10**6)


@st.composite
def _requests(draw: st.DrawFn, start: int, prefix: str) -> list[Req]:
    out = []
    for i in range(draw(st.integers(0, 3))):
        error = draw(st.booleans())
        out.append(
            Req(
                f"{prefix}_q{i}",
                start + 5 + i * 50,
                draw(st.integers(1, 4000)),
                inp=draw(st.integers(0, 5000)),
                out=draw(st.integers(0, 2000)),
                cost=draw(st.sampled_from([0.0, 3.612e-07, 1e-06, 0.000123, 0.5, 1.25])),
                retry=draw(st.sampled_from([0, 0, 1, 2])),
                streaming=draw(st.booleans()),
                intercepted=draw(st.sampled_from([None, None, "blocked by policy"])) if error else None,
                http_status=400 if error else 200,
                error=error,
            )
        )
    return out


@st.composite
def _run(draw: st.DrawFn, prefix: str, start: int, depth: int) -> RunSpec:
    runs = []
    if depth < 2:
        for j in range(draw(st.integers(0, 2))):
            runs.append(draw(_run(f"{prefix}_{j}", start + 100 + j * 400, depth + 1)))
    return RunSpec(
        prefix,
        draw(st.sampled_from(["planner", "writer", "search", ""])),
        start,
        draw(st.integers(100, 5000)),
        requests=draw(_requests(start, prefix)),
        runs=runs,
        emit_span=draw(st.booleans()),
        ids_on_requests=draw(st.booleans()),
        parent_attr=draw(st.booleans()),
    )


@st.composite
def _sessions(draw: st.DrawFn) -> list[SessionSpec]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, 50_000))
        out.append(
            SessionSpec(
                f"hs{i}_{draw(_ids)}",
                draw(st.sampled_from(["/a", "/a/b", "/billing", ""])),
                draw(st.sampled_from(["n1", "n2"])),
                start,
                draw(st.integers(10, 20_000)),
                runs=[draw(_run(f"r{i}_{k}", start + 10 + k * 700, 0)) for k in range(draw(st.integers(0, 3)))],
                emit_span=draw(st.booleans()),
            )
        )
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=_sessions(), now_ms=st.sampled_from([60_000, 10**9]))
def test_generated_sessions_equal_the_file_reader(ch: Data, specs: list[SessionSpec], now_ms: int) -> None:
    ch.count += 1
    name = f"hyp{ch.count}"
    path = write_trace_file(_dir(ch.workdir, name) / "traces.jsonl", make_spans(specs), batch=4)
    ch.add(name, path)
    sel = Selection(now_ns=T0 + now_ms * MS, sort="cost")
    for rollup in (False, True):
        _same(_list_doc(str(path), sel), _list_doc(ch.source(name, rollup), sel))
    _same(_vitals_doc(str(path), sel), _vitals_doc(ch.source(name, False), sel))
    sid = specs[0].session_id
    if any(s.session_id == sid for s in list_sessions(str(path), sel).sessions):
        want, _ = show_session(str(path), sid, sel)
        got, _ = show_session(ch.source(name, True), sid, sel)
        # Trace ids as sets, as in the list: a table has no arrival order to list them in.
        a = _unordered_traces(show_json(want, source="", corrupt=0))
        assert a == _unordered_traces(show_json(got, source="", corrupt=0))


def test_numbers_are_written_as_pdata_writes_them() -> None:
    # pdata's Value.AsString for doubles (ES6 number to string): what the SQL parses.
    assert [go_float(x) for x in (3.612e-07, 1e-06, 0.5, 2.0, 1e21, 123456.789, float("nan"))] == [
        "3.612e-7",
        "0.000001",
        "0.5",
        "2",
        "1e+21",
        "123456.789",
        "json: unsupported value: NaN",
    ]


# --- the roll-up ---------------------------------------------------------------------------


def test_the_shipped_rollup_sql_is_the_one_the_source_reads() -> None:
    shipped = (ROOT / "collector-config" / "clickhouse" / "sessions_rollup.sql").read_text()
    assert shipped == _chrollup.rollup_ddl("otel", "otel_traces")


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "alephant-otel"), *args],
        env=env or clean_env(COLUMNS="200", CLICKHOUSE_USER=USER, CLICKHOUSE_PASSWORD=PASSWORD),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_list_says_once_when_it_falls_back_to_the_spans(ch: Data) -> None:
    raw = _cli("sessions", "list", "--source", ch.url("std", False, password=False), "--json")
    assert raw.returncode == 0, raw.stderr
    assert raw.stderr.count("note: no roll-up table otel_traces_sessions") == 1
    assert len(raw.stderr.splitlines()) == 1
    rolled = _cli("sessions", "list", "--source", ch.url("std", True), "--json")
    assert rolled.returncode == 0 and rolled.stderr == ""
    from_file = _cli("sessions", "list", "--source", str(ch.files["std"]), "--json")
    docs = [json.loads(p.stdout) for p in (raw, rolled, from_file)]
    for d in docs:
        d.pop("source")
    assert docs[0] == docs[1] == docs[2]


def test_cli_show_and_vitals_with_a_prefix(ch: Data) -> None:
    show = _cli("sessions", "show", "sess_", "--source", ch.url("std", True))
    assert show.returncode == 1 and "matches 3 sessions" in show.stderr and len(show.stderr.splitlines()) == 1
    show = _cli("sessions", "show", "sess_a", "--source", ch.url("std", True), "--json")
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["session"]["request_count"] == 5
    vitals = _cli("sessions", "vitals", "--source", ch.url("std", False), "--json", "--sort", "cost")
    want = _cli("sessions", "vitals", "--source", str(ch.files["std"]), "--json", "--sort", "cost")
    a, b = json.loads(vitals.stdout), json.loads(want.stdout)
    a.pop("source"), b.pop("source")
    assert a == b


def test_a_list_transfers_rows_not_spans(ch: Data) -> None:
    # The answer to `--limit 2` is two rows of sessions, whatever the number of spans.
    lst = list_sessions(ch.url("showcase", True), Selection(limit=2, sort="cost"))
    assert len(lst.sessions) == 2 and lst.seen == 24
    assert all(not s.requests for s in lst.sessions)


# --- injection: every filter value is a bound parameter ---------------------------------------

NASTY = [
    "' OR 1=1 --",
    "x'); DROP TABLE otel_traces; --",
    # A placeholder in a value stays a value (the SQL's own placeholders are e.g. {status:String}).
    "{status:Nullable(String)}",
    "\\' OR \\'1\\'=\\'1",
    "/billing' OR path != '",
    "sess_a' UNION SELECT * FROM system.users --",
]


@pytest.mark.parametrize("value", NASTY)
def test_filter_values_are_bound_never_interpolated(ch: Data, value: str) -> None:
    log = ch.server.query_log
    before = log.read_text() if log.exists() else ""
    for rollup in (False, True):
        url = ch.source("std", rollup)
        for sel in (
            Selection(now_ns=NOW, agent=value),
            Selection(now_ns=NOW, path=value),
            Selection(now_ns=NOW, status=value),
            Selection(now_ns=NOW, user=value),
        ):
            _same(_list_doc(str(ch.files["std"]), sel), _list_doc(url, sel))
        with pytest.raises(LookupError):
            show_session(url, value, Selection(now_ns=NOW))
    queries = [json.loads(line) for line in log.read_text()[len(before) :].splitlines()]
    assert queries
    assert all(value not in q["query"] for q in queries)
    # Each filter reached the server as a parameter (escaped by the client for the HTTP form).
    for name in ("agent", "path", "status", "user", "sid", "p"):
        assert any(q["params"].get(name) not in (None, "\\N") for q in queries), name
    # The table is still there, whole.
    assert len(list_sessions(ch.url("std", False), Selection(now_ns=NOW)).sessions) == 3


def test_cli_user_filter_and_vitals_by_answer_like_the_file(ch: Data) -> None:
    # --user was refused on ClickHouse, and --by user|tool|model|metadata.KEY answered empty groups.
    for rollup in (False, True):
        src = ch.url("tools", rollup)
        for argv in (
            ["list", "--user", "u1", "--sort", "cost"],
            ["vitals", "--by", "tool"],
            ["vitals", "--by", "metadata.plan", "--user", "u1"],
        ):
            want = _cli("sessions", *argv, "--json", "--source", str(ch.files["tools"]))
            got = _cli("sessions", *argv, "--json", "--source", src)
            assert got.returncode == want.returncode == 0, got.stderr + want.stderr
            _same(json.loads(want.stdout), json.loads(got.stdout))
            if argv[0] == "list":
                assert {s["user_id"] for s in json.loads(got.stdout)["sessions"]} == {"u1"}
            else:
                assert json.loads(got.stdout)["by"]["groups"], argv


def test_cli_filters_with_quotes_answer_like_the_file(ch: Data) -> None:
    for opt in ("--agent", "--path"):
        got = _cli("sessions", "list", "--source", ch.url("std", True), "--json", opt, NASTY[1])
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["sessions"] == []
    got = _cli("sessions", "list", "--source", ch.url("std", True, table="otel_traces;DROP"), "--json")
    assert got.returncode == 2 and "bad table name" in got.stderr


# --- failures: one line, non-zero exit, no password ----------------------------------------------


def _one_line_error(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("alephant-otel: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_wrong_password_from_the_environment(ch: Data) -> None:
    env = clean_env(CLICKHOUSE_USER=USER, CLICKHOUSE_PASSWORD="hunter2-wrong")
    msg = _one_line_error(_cli("sessions", "list", "--source", ch.url("std", True, password=False), env=env))
    assert "516" in msg and "Authentication failed" in msg and "CLICKHOUSE_PASSWORD" in msg
    assert "hunter2-wrong" not in msg


def test_a_password_in_the_url_is_never_printed(ch: Data) -> None:
    good = _cli("sessions", "list", "--source", ch.url("std", True), "--json", env=clean_env())
    assert good.returncode == 0, good.stderr
    assert PASSWORD not in good.stdout + good.stderr
    bad_url = ch.url("std", True, password=False).replace("://", f"://{USER}:hunter2-wrong@")
    for verb in (["list"], ["vitals"], ["show", "sess_a"]):
        done = _cli("sessions", *verb, "--source", bad_url, env=clean_env())
        msg = _one_line_error(done)
        assert "hunter2-wrong" not in done.stdout + done.stderr and "516" in msg


def test_an_unknown_table(ch: Data) -> None:
    msg = _one_line_error(_cli("sessions", "list", "--source", ch.url("std", False, table="no_such_table")))
    assert "no_such_table" in msg and "?table=" in msg


def test_a_server_error(ch: Data) -> None:
    # A table of that name without the exporter's columns: the server's own error, in one line.
    ch.server.sql("CREATE DATABASE IF NOT EXISTS broken")
    ch.server.sql("CREATE TABLE IF NOT EXISTS broken.otel_traces (x UInt8) ENGINE = MergeTree ORDER BY x")
    msg = _one_line_error(_cli("sessions", "vitals", "--source", ch.server.url("broken")))
    assert "DB::Exception" in msg and len(msg) < 600


def test_a_server_that_hangs() -> None:
    # Accepts the connection, reads the request, never answers: the bound ends it.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        port = srv.getsockname()[1]
        started = time.monotonic()
        done = _cli("sessions", "list", "--source", f"clickhouse+http://127.0.0.1:{port}/otel?timeout=1", timeout=30)
        assert time.monotonic() - started < 20
        msg = _one_line_error(done)
        assert "no answer within 1 s" in msg
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def test_a_plain_install_names_the_extra(plain_install: Path) -> None:
    done = subprocess.run(
        [str(plain_install / "alephant-otel"), "sessions", "list", "--source", "clickhouse+http://127.0.0.1:9/otel"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "alephant-otel: reading ClickHouse needs the clickhouse extra: pip install 'alephant-otel[clickhouse]'\n"
    )


def test_the_grafana_panels_run_on_the_rollup(ch: Data) -> None:
    # The dashboard's ClickHouse panels, with Grafana's time macros filled in, on the real engine.
    dash = json.loads((ROOT / "collector-config" / "grafana" / "dashboards" / "alephant.json").read_text())
    panels = {p["title"]: p["targets"][0]["rawSql"] for p in dash["panels"] if p["datasource"]["uid"] == "clickhouse"}
    assert len(panels) == 3
    want = {s["session_id"]: s for s in _list_doc(str(ch.files["std"]), Selection(now_ns=NOW))["sessions"]}
    answers = {}
    for title, panel_sql in panels.items():
        sql = (
            panel_sql.replace("otel.otel_traces_sessions", "std_rollup.otel_traces_sessions")
            .replace("$__fromTime", "toDateTime('2001-01-01 00:00:00')")
            .replace("$__toTime", "toDateTime('2100-01-01 00:00:00')")
        )
        answers[title] = [line.split("\t") for line in ch.server.sql(sql).splitlines()]
    top = answers["Top sessions by cost (ClickHouse roll-up)"]
    assert [r[0] for r in top] == sorted(want, key=lambda s: -want[s]["cost_usd"])
    assert {r[0]: float(r[1]) for r in top} == pytest.approx({k: v["cost_usd"] for k, v in want.items()})
    by_path = {r[0]: float(r[1]) for r in answers["Cost by path (ClickHouse roll-up)"]}
    assert by_path == pytest.approx(
        {p: sum(s["cost_usd"] for s in want.values() if s["path"] == p) for p in {s["path"] for s in want.values()}}
    )
    by_agent = {r[0]: float(r[1]) for r in answers["Cost by agent (ClickHouse roll-up)"]}
    assert sum(by_agent.values()) == pytest.approx(sum(s["cost_usd"] for s in want.values()))
    assert by_agent["triage"] == pytest.approx(0.000036 + 0.000285)


# --- the web view: the list polls the server, a session page asks it for the tree ---------------


def test_the_web_view_lists_and_follows_clickhouse(ch: Data) -> None:
    import re
    import signal
    import urllib.error
    import urllib.request

    ch.server.create("ui_rollup")
    ch.server.add_rollup("ui_rollup")
    ch.server.load(rows_from_file(ch.files["std"]), "ui_rollup")
    proc = subprocess.Popen(
        [
            str(BIN / "alephant-otel"),
            "ui",
            "--port",
            "0",
            "--no-browser",
            "--source",
            ch.server.url("ui_rollup", password=True),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert PASSWORD not in line
        # The line names the source too (its URL, without the password): the UI's URL is the other one.
        m = next(x for x in re.finditer(r"(http://127\.0\.0\.1:\d+/)", line) if str(ch.server.port) not in x.group(1))

        def get(path: str) -> Any:
            try:
                with urllib.request.urlopen(m.group(1) + path, timeout=30) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                raise AssertionError(f"{path}: {exc.code} {exc.read().decode()[:500]}") from None

        rows = get("api/list")["rows"]
        assert sorted(r["session_id"] for r in rows) == ["sess_a", "sess_b", "sess_c"]
        # One row per session: the breakdowns that need requests fall back to the agent one.
        groups = get("api/list?by=model")["groups"]
        assert groups == get("api/list?by=agent")["groups"]
        with urllib.request.urlopen(m.group(1) + "?by=model", timeout=30) as resp:
            page = resp.read().decode()
        assert "answers per session: no breakdown by model" in page and "<h2>Cost by agent</h2>" in page
        assert ">metadata." not in page and ">path</a>" in page
        version = get("api/version")["version"]
        doc = get("api/sessions/sess_a")  # the tree, from the session's spans
        assert doc["session"]["requests"] == 5 and PASSWORD not in json.dumps(doc)
        assert len(doc["rows"]) >= 5 + 3  # a row per request and per run: the whole tree
        # A new session arrives: the live list shows it within the store's ask-again interval.
        more = write_trace_file(_dir(ch.workdir, "ui_more") / "t.jsonl", make_spans([_one_more()], stray=False))
        ch.server.load(rows_from_file(more), "ui_rollup")
        deadline = time.monotonic() + 20
        while get("api/version")["version"] == version:
            assert time.monotonic() < deadline, "the live list did not change"
            time.sleep(0.5)
        assert "sess_new" in {r["session_id"] for r in get("api/list")["rows"]}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _one_more() -> SessionSpec:
    return SessionSpec(
        "sess_new",
        "/new",
        "New",
        90_000,
        1_000,
        runs=[
            RunSpec("run_new", "planner", 90_010, 500, requests=[Req("req_new", 90_020, 100, inp=5, out=5, cost=1e-06)])
        ],
    )


def test_follow_polls_clickhouse(ch: Data) -> None:
    import signal

    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "sessions", "list", "--follow", "--source", ch.url("std", True)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(COLUMNS="200"),
    )
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 30
        while "sess_c" not in seen or "sess_a" not in seen:
            assert time.monotonic() < deadline, seen
            seen += proc.stdout.readline()
        assert "0 active" in seen  # the T0 sessions ended long ago
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "Traceback" not in err and PASSWORD not in err


def _ui(source: str) -> tuple[subprocess.Popen[str], str]:
    """``alephant-otel ui`` on ``source``; returns the process and the page's base URL."""
    import re

    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "ui", "--port", "0", "--no-browser", "--source", source],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = [x.group(1) for x in re.finditer(r"(http://127\.0\.0\.1:\d+/)", line)]
    return proc, found[-1]


def test_the_web_view_breaks_clickhouse_down_by_user_and_metadata_as_the_file(ch: Data) -> None:
    import signal
    import urllib.request

    def get(base: str, path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=60) as resp:
            return json.loads(resp.read())

    procs = []
    try:
        (click, click_url), (file, file_url) = _ui(ch.url("tools", True)), _ui(str(ch.files["tools"]))
        procs = [click, file]
        for by in ("user", "metadata.plan"):
            want = get(file_url, f"api/list?by={by}")["groups"]
            got = get(click_url, f"api/list?by={by}")["groups"]
            assert len(want) >= 2 and {g["key"] for g in want} != {"(none)"}, want
            assert got == want, by
        with urllib.request.urlopen(click_url + "?by=user", timeout=60) as resp:
            page = resp.read().decode()
        assert "<h2>Cost by user</h2>" in page and ">metadata.plan</a>" in page
        assert "no breakdown by" not in page
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_show_carries_the_conversation_as_the_file(ch: Data) -> None:
    """Captured content (issue 33) read back through ClickHouse: the exporter's attribute map, as the file."""
    from alephant_otel import _names as n
    from alephant_otel.analytics._conversation import conversation

    path = _dir(ch.workdir, "content") / "t.jsonl"
    write_trace_file(path, make_spans([support_session()], stray=False))
    out = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    attrs = {kv["key"]: kv["value"].get("stringValue") for kv in sp.get("attributes", [])}
                    if attrs.get(n.ATTR_SPAN_KIND) == "request":
                        text = f"hi {attrs[n.ATTR_REQUEST_ID]}"
                        said = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
                        value = {"stringValue": json.dumps(said)}
                        sp["attributes"].append({"key": n.GEN_AI_INPUT_MESSAGES, "value": value})
        out.append(json.dumps(doc))
    path.write_text("\n".join(out) + "\n")
    ch.server.create("content_raw")
    ch.server.load(rows_from_file(path), "content_raw")
    sel = Selection(now_ns=NOW)
    want, _ = show_session(str(path), "sess_a", sel)
    got, _ = show_session(ch.server.url("content_raw", password=True), "sess_a", sel)
    said = {r.request_id: [(t.role, t.text) for t in conversation(r)] for r in want.requests}
    assert said and all(v == [("user", f"hi {k}")] for k, v in said.items())
    assert {r.request_id: [(t.role, t.text) for t in conversation(r)] for r in got.requests} == said
