"""Session analytics over trace files written from real SDK spans.

The files are OTLP/JSON lines encoded by the SDK's own OTLP encoder (see
``fixtures/analytics_data.py``); every expected number comes from the specs
the spans were made from, never from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.analytics_data import (
    MS,
    T0,
    SessionSpec,
    headless_session,
    linked_session,
    make_spans,
    otlp_json,
    standard_file,
    support_session,
    write_trace_file,
)

from alephant_otel import _names as n
from alephant_otel.analytics import (
    FileSource,
    Session,
    SessionBuilder,
    SourceError,
    SpanQuery,
    VitalsConfig,
    build_sessions,
    compute_vitals,
    filter_sessions,
    load_sessions,
    parse_time,
    read_sessions,
    sort_sessions,
)
from alephant_otel.analytics._convert import records_from_otlp

LATER = T0 + 3600 * 10**9  # an hour after the data: nothing is recent any more


def by_id(sessions: list[Session]) -> dict[str, Session]:
    return {s.session_id: s for s in sessions}


def assert_totals(s: Session, spec: SessionSpec) -> None:
    reqs = spec.all_requests()
    assert s.request_count == len(reqs) == len(s.requests)
    assert s.cost_usd == pytest.approx(sum(r.cost for r in reqs), abs=1e-12)
    assert s.input_tokens == sum(r.inp for r in reqs)
    assert s.output_tokens == sum(r.out for r in reqs)
    assert s.retries == sum(1 for r in reqs if r.retry)
    assert s.intercepted == sum(1 for r in reqs if r.intercepted)
    assert s.errors == sum(1 for r in reqs if r.error)
    assert sorted(r.request_id or "" for r in s.requests) == sorted(r.request_id for r in reqs)
    lat = {r.request_id: r.latency_s for r in s.requests}
    for r in reqs:
        assert lat[r.request_id] == pytest.approx(r.dur_ms / 1000)


def test_full_session_tree_and_totals(tmp_path: Path) -> None:
    sessions = by_id(load_sessions(standard_file(tmp_path), now_ns=LATER))
    spec = support_session()
    s = sessions["sess_a"]
    assert_totals(s, spec)
    assert (s.name, s.path, s.span_present) == ("Refund case", "/support/triage", True)
    assert s.status == "intercepted"
    assert s.start_ns == T0
    assert s.end_ns == T0 + 10_000 * MS
    assert s.agents == ["triage", "search", "writer"]
    # tree: triage -> (req_1, search -> (req_2, req_3), req_4); writer -> req_5
    assert [r.run_id for r in s.runs] == ["run_triage", "run_writer"]
    triage, writer = s.runs
    assert [q.request_id for q in triage.requests] == ["req_1", "req_4"]
    (search,) = triage.runs
    assert (search.run_id, search.agent_id, search.parent_run_id) == ("run_search", "search", "run_triage")
    assert [q.request_id for q in search.requests] == ["req_2", "req_3"]
    assert [q.request_id for q in writer.requests] == ["req_5"]
    assert s.direct_requests == []
    # run totals include nested runs
    assert triage.request_count == 4
    assert search.request_count == 2
    assert triage.cost_usd == pytest.approx(0.000036 + 0.000285 + 0.000156)
    assert search.retries == 1
    assert triage.retries == 1
    assert writer.intercepted == 1
    assert triage.latency_s == pytest.approx(6.0)
    # request details
    req = {r.request_id: r for r in s.requests}
    assert req["req_3"].retry_attempt == 1
    assert req["req_3"].retried
    assert req["req_2"].error
    assert req["req_2"].http_status == 429
    assert not req["req_2"].intercepted
    assert req["req_4"].streaming
    (event,) = req["req_5"].policy_events
    assert (event.reason, event.code, event.status) == ("PII detected in prompt", "pii", 400)
    assert [e.reason for e in s.policy_events] == ["PII detected in prompt"]
    # the session span's roll-up agrees, and was not added on top
    assert s.rollup is not None
    assert s.rollup.requests == 5
    assert s.rollup_matches is True
    assert not s.totals_from_rollup


def test_rollups_are_never_added_to_request_sums(tmp_path: Path) -> None:
    """Session and run spans carry alephant.total.*: counting them would double the cost."""
    spec = support_session()
    s = by_id(load_sessions(standard_file(tmp_path), now_ns=LATER))["sess_a"]
    assert s.cost_usd == pytest.approx(sum(r.cost for r in spec.all_requests()))
    assert s.find_run("run_triage").rollup.cost_usd == pytest.approx(s.find_run("run_triage").cost_usd)


def test_session_without_session_or_run_spans(tmp_path: Path) -> None:
    sessions = by_id(load_sessions(standard_file(tmp_path), now_ns=LATER))
    s = sessions["sess_b"]
    assert_totals(s, headless_session())
    assert not s.span_present
    assert s.rollup is None
    assert s.rollup_matches is None
    assert (s.name, s.path) == ("Invoice", "/billing")
    (b1,) = s.runs
    assert (b1.run_id, b1.agent_id, b1.span_present) == ("run_b1", "billing", False)
    (b2,) = b1.runs
    assert (b2.run_id, b2.agent_id, b2.parent_run_id) == ("run_b2", "ledger", "run_b1")
    assert [q.request_id for q in b1.requests] == ["req_b1"]
    assert [q.request_id for q in b2.requests] == ["req_b2"]
    # without a session span a session is completed once it has been quiet long enough...
    assert s.status == "completed"


def test_active_while_recent_activity_and_no_session_span(tmp_path: Path) -> None:
    path = standard_file(tmp_path)
    last_b = T0 + (20_600 + 700) * MS
    sessions = by_id(load_sessions(path, now_ns=last_b + 60 * 10**9))
    assert sessions["sess_b"].status == "active"
    assert sessions["sess_c"].status == "completed"  # its session span ended
    assert by_id(load_sessions(path, now_ns=last_b + 60 * 10**9, active_window_s=30))["sess_b"].status == "completed"


def test_parent_links_place_runs_and_requests_without_ids(tmp_path: Path) -> None:
    s = by_id(load_sessions(standard_file(tmp_path), now_ns=LATER))["sess_c"]
    assert_totals(s, linked_session())
    (c1,) = s.runs
    (c2,) = c1.runs
    assert c2.parent_run_id == "run_c1"
    assert [q.request_id for q in c1.requests] == ["req_c1"]
    assert [q.request_id for q in c2.requests] == ["req_c2"]
    assert c2.requests[0].agent_id == "doer"  # inherited from the run it was placed in


def test_spans_outside_sessions_are_ignored() -> None:
    builder = SessionBuilder()
    spans = make_spans([support_session()], stray=True)
    builder.add_all(records_from_otlp(otlp_json(spans)["resourceSpans"]))
    assert builder.ignored == 1
    assert builder.spans == len(spans)
    assert [s.session_id for s in builder.build(now_ns=LATER)] == ["sess_a"]


def test_order_of_spans_does_not_matter(tmp_path: Path) -> None:
    spans = make_spans([support_session(), headless_session()])
    forward = write_trace_file(tmp_path / "f.jsonl", spans, batch=1)
    backward = write_trace_file(tmp_path / "b.jsonl", list(reversed(spans)), batch=4)
    a = {
        s.session_id: (s.request_count, s.cost_usd, [r.run_id for r in s.walk_runs()])
        for s in load_sessions(forward, now_ns=LATER)
    }
    b = {
        s.session_id: (s.request_count, s.cost_usd, [r.run_id for r in s.walk_runs()])
        for s in load_sessions(backward, now_ns=LATER)
    }
    assert a == b


def test_totals_from_rollup_when_request_spans_are_missing(tmp_path: Path) -> None:
    spans = [s for s in make_spans([support_session()]) if (s.attributes or {}).get(n.ATTR_SPAN_KIND) == "session"]
    s = load_sessions(write_trace_file(tmp_path / "t.jsonl", spans), now_ns=LATER)[0]
    assert s.totals_from_rollup
    assert s.requests == []
    assert s.request_count == 5
    assert s.retries == 1
    assert s.intercepted == 1
    assert s.cost_usd == pytest.approx(0.000477)
    assert s.status == "intercepted"


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = standard_file(tmp_path)
    good = path.read_text().splitlines()
    lines = [good[0], "{not json", '{"resourceSpans": 3}', "[1, 2]", good[1][: len(good[1]) // 2], "", *good[1:]]
    path.write_text("\n".join(lines) + "\n")
    result = read_sessions(path, now_ns=LATER)
    assert result.corrupt == 4
    assert_totals(result.get("sess_a"), support_session())


def test_ids_in_base64_are_read_like_hex(tmp_path: Path) -> None:
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = make_spans([support_session()])
    doc = json_format.MessageToDict(encode_spans(spans))  # protobuf's printer: base64 ids
    path = tmp_path / "b64.jsonl"
    path.write_text(json.dumps(doc) + "\n")
    s = load_sessions(path, now_ns=LATER)[0]
    assert_totals(s, support_session())
    assert [r.run_id for r in s.walk_runs()] == ["run_triage", "run_search", "run_writer"]
    assert all(len(r.span_id) == 16 and len(r.trace_id) == 32 for r in s.requests)


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no trace file at .*nope\.jsonl"):
        load_sessions(tmp_path / "nope.jsonl")


def test_filters_and_sorting(tmp_path: Path) -> None:
    sessions = load_sessions(standard_file(tmp_path), now_ns=LATER)
    ids = lambda ss: [s.session_id for s in ss]  # noqa: E731
    assert ids(filter_sessions(sessions, path="/billing")) == ["sess_b", "sess_c"]
    assert ids(filter_sessions(sessions, path="/support")) == ["sess_a"]  # prefix at a '/'
    assert ids(filter_sessions(sessions, path="/supp")) == []
    assert ids(filter_sessions(sessions, agent="ledger")) == ["sess_b"]
    assert ids(filter_sessions(sessions, status="intercepted")) == ["sess_a"]
    assert ids(filter_sessions(sessions, min_cost=0.00002)) == ["sess_a", "sess_b"]
    assert ids(filter_sessions(sessions, since_ns=T0 + 25_000 * MS)) == ["sess_c"]
    assert ids(filter_sessions(sessions, until_ns=T0 + 1_000 * MS)) == ["sess_a"]
    assert ids(sort_sessions(sessions, "cost")) == ["sess_a", "sess_b", "sess_c"]
    assert ids(sort_sessions(sessions, "started")) == ["sess_c", "sess_b", "sess_a"]
    assert ids(sort_sessions(sessions, "requests"))[0] == "sess_a"
    with pytest.raises(ValueError, match="bad sort key"):
        sort_sessions(sessions, "vibes")


def test_parse_time() -> None:
    now = 10**18
    assert parse_time("90s", now_ns=now) == now - 90 * 10**9
    assert parse_time("2d", now_ns=now) == now - 2 * 86400 * 10**9
    assert parse_time("1.5h", now_ns=now) == now - 5400 * 10**9
    assert parse_time("2025-06-15T15:06:40Z") == T0
    assert parse_time("2025-06-15T17:06:40+02:00") == T0
    assert parse_time("2025-06-15 15:06:40") == T0
    with pytest.raises(ValueError, match="bad time"):
        parse_time("yesterday-ish")


def _session_of(sid: str, path: str, tokens: int, start_ms: int, lat_ms: int = 100, retries: int = 0) -> SessionSpec:
    from fixtures.analytics_data import Req, RunSpec

    reqs = [
        Req(
            f"{sid}_r{i}",
            start_ms + i * 10,
            lat_ms,
            inp=tokens // 2,
            out=tokens // 2,
            cost=tokens * 1e-7,
            retry=1 if i < retries else 0,
        )
        for i in range(max(1, retries))
    ]
    return SessionSpec(
        sid, path, sid, start_ms, 1000, runs=[RunSpec(f"run_{sid}", "agent", start_ms, 900, requests=reqs)]
    )


def test_vitals_flags_outliers(tmp_path: Path) -> None:
    specs = [_session_of(f"s{i}", "/p", 1000, i * 2000) for i in range(4)]
    specs.append(_session_of("big", "/p", 5000, 9000))  # 5x the median of its 4 peers
    specs.append(_session_of("slow", "/q", 1000, 11000, lat_ms=4000))
    specs.append(_session_of("flaky", "/q", 1000, 13000, retries=3))
    sessions = build_sessions(records_from_otlp(otlp_json(make_spans(specs))["resourceSpans"]), now_ns=LATER)
    v = compute_vitals(sessions, VitalsConfig(min_peers=3))
    flags = {sv.session.session_id: {f.kind for f in sv.flags} for sv in v.sessions}
    assert flags["big"] == {"token_outlier"}
    assert flags["slow"] == {"high_latency"}
    assert flags["flaky"] == {"repeated_retries"}
    assert all(not flags[f"s{i}"] for i in range(4))
    assert v.requests == 9
    assert v.retries == 3
    assert [g.key for g in v.by_path] == ["/p", "/q"]
    assert v.by_path[0].cost_usd == pytest.approx(9000 * 1e-7)
    # with too few peers nothing is compared
    v2 = compute_vitals(sessions, VitalsConfig(min_peers=10))
    assert all(f.kind == "repeated_retries" for sv in v2.sessions for f in sv.flags)


def test_file_source_reports_progress(tmp_path: Path) -> None:
    path = standard_file(tmp_path)
    seen: list[tuple[int, int | None]] = []
    list(FileSource(path).spans(SpanQuery(), lambda done, total: seen.append((done, total))))
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_file_written_by_the_library_exporter(tmp_path: Path) -> None:
    """The library's own TraceFileExporter output reads back to the same trees and totals."""
    from alephant_otel.export._tracefile import TraceFileExporter

    path = tmp_path / "lib.otlp.jsonl"
    exporter = TraceFileExporter(path)
    spans = make_spans([support_session(), headless_session(), linked_session()])
    for i in range(0, len(spans), 5):
        exporter.export(spans[i : i + 5])
    exporter.shutdown()
    sessions = by_id(load_sessions(path, now_ns=LATER))
    for spec in (support_session(), headless_session(), linked_session()):
        assert_totals(sessions[spec.session_id], spec)
    assert [r.run_id for r in sessions["sess_a"].walk_runs()] == ["run_triage", "run_search", "run_writer"]


def test_unfinished_last_line_is_not_corrupt(tmp_path: Path) -> None:
    path = standard_file(tmp_path)
    with path.open("a") as fh:
        fh.write('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab')  # a writer mid-write
    source = FileSource(path)
    records = list(source.spans(SpanQuery()))
    assert records
    assert source.corrupt == 0
    assert source.incomplete_tail


# --- the fast file reader (rows, worker processes) against the record path -----------


def _plain_data(obj: object) -> object:
    """Sessions (dataclasses all the way down) as nested tuples, to compare exactly."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__name__, *(_plain_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)))
    if isinstance(obj, (list, tuple)):
        return tuple(_plain_data(x) for x in obj)
    return obj


def _kv(key: str, value: object) -> dict[str, object]:
    return {"key": key, "value": value}


def _odd_line() -> str:
    """Spans with every value shape the converter has a branch for."""
    s = {"stringValue": "sess_odd"}
    spans = [
        {  # a request span: ints as numbers and strings, a float slot given an int, aliases only
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": "b7ad6b7169203331",
            "parentSpanId": "",
            "startTimeUnixNano": 1_750_000_000_000_000_000,
            "endTimeUnixNano": "1750000001000000000",
            "status": {"code": "STATUS_CODE_ERROR", "message": "HTTP 429"},
            "attributes": [
                _kv(n.GEN_AI_CONVERSATION_ID, s),
                _kv(n.GEN_AI_AGENT_ID, {"stringValue": "aliased"}),
                _kv(n.ATTR_REQUEST_ID, {"stringValue": "req_odd"}),
                _kv(n.GEN_AI_USAGE_INPUT_TOKENS, {"intValue": 12}),
                _kv(n.GEN_AI_USAGE_OUTPUT_TOKENS, {"stringValue": "7"}),
                _kv(n.ATTR_COST_USD, {"intValue": "3"}),
                _kv("http.response.status_code", {"doubleValue": 429.0}),
                _kv(n.ATTR_RETRY_ATTEMPT, {"intValue": "-1"}),
                _kv(n.ATTR_STREAMING, {"boolValue": True}),
                _kv(n.ATTR_BODY_INCOMPLETE, {"boolValue": True}),
                _kv(n.ATTR_INTERCEPTED, {"stringValue": "true"}),
                _kv(n.GEN_AI_REQUEST_MODEL, {"stringValue": "first"}),
                _kv(n.GEN_AI_REQUEST_MODEL, {"stringValue": "second"}),  # repeated: the last wins
                _kv(n.GEN_AI_RESPONSE_MODEL, {"intValue": "4"}),
                _kv(n.ATTR_SESSION_PATH, {"arrayValue": {"values": [{"stringValue": "/a"}]}}),
                {"key": "unread.attribute"},  # no value: nothing reads it
            ],
            "events": [
                {
                    "name": n.EVENT_POLICY,
                    "attributes": [
                        _kv(n.EVENT_POLICY_REASON, {"stringValue": "budget"}),
                        _kv(n.EVENT_POLICY_STATUS, {"intValue": "402"}),
                    ],
                }
            ],
        },
        {  # a session span with base64 ids and a roll-up
            "traceId": "CvdlGRbNQ92ESOshHIAxnA==",
            "spanId": "t61rcWkgMzE=",
            "name": "session",
            "startTimeUnixNano": "1749999999000000000",
            "endTimeUnixNano": "1750000002000000000",
            "attributes": [
                _kv(n.ATTR_SESSION_ID, s),
                _kv(n.ATTR_SESSION_NAME, {"stringValue": "odd one"}),
                _kv(n.ATTR_TOTAL_REQUESTS, {"intValue": "1"}),
                _kv(n.ATTR_TOTAL_COST_USD, {"doubleValue": 3}),
            ],
        },
        {  # no kind: inferred from the name and the run id
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": "00000000000000aa",
            "name": "invoke_agent planner",
            "attributes": [_kv(n.ATTR_SESSION_ID, s), _kv(n.ATTR_RUN_ID, {"stringValue": "run_odd"})],
        },
        {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00000000000000ab", "name": "GET /"},
    ]
    return json.dumps({"resource_spans": [{"scopeSpans": [{"spans": spans}]}]})


def _varied_file(path: Path) -> Path:
    """Many sessions in lines of different sizes, corrupt and blank lines, odd values, a cut last line."""
    specs = [_session_of(f"s{i}", f"/p{i % 3}", 1000 + i, i * 2000, retries=i % 3) for i in range(30)]
    spans = make_spans([support_session(), headless_session(), linked_session(), *specs])
    lines: list[str] = []
    i = 0
    for size in (1, 7, 3, 12, 2, 5) * 20:
        if i >= len(spans):
            break
        lines.append(json.dumps(otlp_json(spans[i : i + size]), separators=(",", ":")))
        i += size
        if len(lines) in (3, 11):
            lines += ["{not json", "", '{"resourceSpans": 3}', "[1, 2]"]
    lines.append(_odd_line())
    path.write_text("\n".join(lines) + "\n" + lines[0][:40])  # the last line cut mid-write
    return path


def _record_path(path: Path) -> tuple[object, int, int]:
    """Sessions through FileSource.spans and SpanRecords: the reference."""
    source = FileSource(path)
    builder = SessionBuilder()
    builder.add_all(source.spans(SpanQuery()))
    return _plain_data(builder.build(now_ns=LATER)), builder.spans, source.corrupt


def _spy_read_chunk(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Start offsets of the chunks read in this process (not in a worker)."""
    import os

    from alephant_otel.analytics import _fastfile

    pid, seen = os.getpid(), []
    real = _fastfile.read_chunk

    def spy(path: str, start: int, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() == pid:
            seen.append(start)
        return real(path, start, *args, **kwargs)

    monkeypatch.setattr(_fastfile, "read_chunk", spy)
    return seen


def test_fast_reader_stays_in_process_when_other_threads_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forking while another thread may hold a lock can deadlock the child: read serially then."""
    import threading

    from alephant_otel.analytics import _fastfile

    path = _varied_file(tmp_path / "t.jsonl")
    expected, _, _ = _record_path(path)
    monkeypatch.setattr(_fastfile, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_fastfile, "_CHUNK_MIN", 997)
    monkeypatch.setattr(_fastfile, "_CHUNK_MAX", 997)
    in_parent = _spy_read_chunk(monkeypatch)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        result = read_sessions(FileSource(path, workers=2), now_ns=LATER)
    finally:
        stop.set()
        other.join()
    assert _plain_data(result.sessions) == expected
    assert len(in_parent) == len(_fastfile._chunks(path.stat().st_size, 2))  # every chunk read here


@pytest.mark.parametrize("workers", [1, 2])
def test_fast_reader_gives_the_sessions_of_the_record_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    from alephant_otel.analytics import _fastfile

    path = _varied_file(tmp_path / "t.jsonl")
    expected, spans, corrupt = _record_path(path)
    assert corrupt == 6
    # Small chunks, so that chunk edges fall inside lines, on line starts and on blank lines.
    monkeypatch.setattr(_fastfile, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_fastfile, "_CHUNK_MIN", 997)
    monkeypatch.setattr(_fastfile, "_CHUNK_MAX", 997)
    in_parent = _spy_read_chunk(monkeypatch)
    source = FileSource(path, workers=workers)
    # The pool forks only from a single-threaded process: a thread an earlier test on this
    # worker left running (an SDK's exporter) sends every chunk to the parent instead.
    pooled = workers == 2 and _fastfile._can_fork()
    result = read_sessions(source, now_ns=LATER)
    assert _plain_data(result.sessions) == expected
    assert (len(in_parent) == 0) == pooled  # pooled: every chunk was parsed in the pool
    assert (result.spans, result.corrupt, source.incomplete_tail) == (spans, 6, True)
    assert len(_fastfile._chunks(path.stat().st_size, workers)) > 100
    odd = result.get("sess_odd")
    assert odd is not None
    assert odd.requests[0].request_model == "second"


def test_fast_reader_chunk_edges_anywhere(tmp_path: Path) -> None:
    from alephant_otel.analytics import _fastfile

    spans = make_spans([support_session()])
    path = write_trace_file(tmp_path / "t.jsonl", spans[:6], batch=2)
    path.write_text(path.read_text().replace("\n", "\n\n", 1) + "{cut")
    size = path.stat().st_size

    def read(start: int, end: int) -> tuple[list[object], int, int, bool]:
        rows: list[object] = []
        r = _fastfile.read_chunk(str(path), start, end, lambda got, ignored: rows.extend(got))
        return rows, r.lines, r.corrupt, r.incomplete_tail

    whole = read(0, _fastfile._EOF)
    assert whole[1:] == (4, 0, True)
    assert len(whole[0]) == 6
    for cut in range(size + 1):
        a, b = read(0, cut), read(cut, _fastfile._EOF)
        assert (a[0] + b[0], a[1] + b[1], a[3] or b[3]) == (whole[0], 4, True), cut


def test_fast_reader_rows_match_records_span_by_span() -> None:
    from alephant_otel.analytics import _rows
    from alephant_otel.analytics._model import Request

    resource_spans = json.loads(_odd_line())["resource_spans"]
    specs = [support_session(), headless_session(), linked_session()]
    resource_spans += otlp_json(make_spans(specs))["resourceSpans"]
    rows: list[tuple[object, ...]] = []
    ignored = _rows.rows_from_otlp(resource_spans, rows)
    records = list(records_from_otlp(resource_spans))
    assert ignored == sum(1 for r in records if r.session_id is None) == 2
    in_sessions = [r for r in records if r.session_id is not None]
    assert len(rows) == len(in_sessions)
    builder, reference = SessionBuilder(), SessionBuilder()
    for row, rec in zip(rows, in_sessions, strict=True):
        if row[0]:
            assert rec.kind == n.SPAN_KIND_REQUEST
            builder._add_request_row(row)
            assert _plain_data(builder._sessions[rec.session_id].requests[-1]) == _plain_data(Request.from_record(rec))
        else:
            back = _rows.record_from_row(row)
            assert [getattr(back, s) for s in back.__slots__] == [getattr(rec, s) for s in rec.__slots__]
            builder.add(back)
        reference.add(rec)
    assert _plain_data(builder.build(now_ns=LATER)) == _plain_data(reference.build(now_ns=LATER))


def test_fast_reader_decoder_falls_back_to_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys
    import types

    from alephant_otel.analytics import _fastfile

    real_import = importlib.import_module

    def no_orjson(name: str, package: str | None = None) -> types.ModuleType:
        if name == "orjson":
            raise ImportError(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_orjson)
    assert _fastfile._decoder() == ("json", json.loads)
    fake = types.ModuleType("orjson")
    fake.loads = json.loads  # type: ignore[attr-defined]
    monkeypatch.setattr(importlib, "import_module", real_import)
    monkeypatch.setitem(sys.modules, "orjson", fake)
    assert _fastfile._decoder()[0] == "orjson"

    # The reader uses whatever decoder was chosen; with json it gives the same sessions.
    path = _varied_file(tmp_path / "t.jsonl")
    expected, _, _ = _record_path(path)
    monkeypatch.setattr(_fastfile, "decoder", ("json", json.loads))
    monkeypatch.setattr(_fastfile, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_fastfile, "_CHUNK_MIN", 1000)
    assert _plain_data(read_sessions(FileSource(path, workers=2), now_ns=LATER).sessions) == expected


def _dying_reader(path: str, start: int, end: int) -> tuple[list[bytes], int, int, int, bool]:
    import os
    import time

    from alephant_otel.analytics import _fastfile

    if start > 0:
        time.sleep(0.2)  # (the first chunk is usually delivered before the pool breaks)
        os._exit(3)  # a worker killed mid-read
    return _fastfile._read_chunk_marshalled(path, start, end)


def test_fast_reader_falls_back_to_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alephant_otel.analytics import _fastfile

    path = _varied_file(tmp_path / "t.jsonl")
    expected, spans, _ = _record_path(path)
    monkeypatch.setattr(_fastfile, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_fastfile, "_CHUNK_MIN", 500)

    def no_pool(*args: object, **kwargs: object) -> None:
        raise OSError("no processes here")

    with monkeypatch.context() as m:
        m.setattr(_fastfile, "ProcessPoolExecutor", no_pool)
        result = read_sessions(FileSource(path, workers=2), now_ns=LATER)
    assert (_plain_data(result.sessions), result.spans, result.corrupt) == (expected, spans, 6)

    # A worker dies after the first chunk was fed: the rest is read in this process.
    monkeypatch.setattr(_fastfile, "_pool_task", _dying_reader)
    in_parent = _spy_read_chunk(monkeypatch)
    result = read_sessions(FileSource(path, workers=2), now_ns=LATER)
    assert (_plain_data(result.sessions), result.spans, result.corrupt) == (expected, spans, 6)
    assert in_parent  # what the pool did not deliver was read here, once


def test_fast_reader_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from alephant_otel.analytics import _fastfile

    monkeypatch.setenv(_fastfile.ENV_WORKERS, "1")
    assert _fastfile.worker_count() == 1
    monkeypatch.setenv(_fastfile.ENV_WORKERS, "nope")
    assert 1 <= _fastfile.worker_count() <= 8


def test_read_sessions_builds_with_the_gc_off_and_restores_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Building a million requests' trees with the collector on cost 3x the build itself.
    import gc

    from alephant_otel.analytics import _reconstruct
    from alephant_otel.analytics._read import read_sessions

    path = standard_file(tmp_path)
    states: list[bool] = []
    real_build = _reconstruct.SessionBuilder.build

    def build(self, **kw):
        states.append(gc.isenabled())
        return real_build(self, **kw)

    monkeypatch.setattr(_reconstruct.SessionBuilder, "build", build)
    assert gc.isenabled()
    assert len(read_sessions(path).sessions) == 3
    assert states == [False]
    assert gc.isenabled()


# --- spans an LLM SDK or another GenAI instrumentation writes around the gateway call --------


def _sessions_of_exported(spans: Any, tmp_path: Path) -> dict[str, Session]:
    from alephant_otel.export._tracefile import TraceFileExporter

    path = tmp_path / "wrapped.otlp.jsonl"
    exporter = TraceFileExporter(path)
    exporter.export(spans.get_finished_spans())
    exporter.shutdown()
    full = load_sessions(path, now_ns=LATER * 10)
    # A summary read (sessions list) drops the same wrapper spans without keeping the requests.
    summary = read_sessions(path, now_ns=LATER * 10, summary=True).sessions
    assert _summed(_plain_data(summary)) == _as_summary(full)
    return by_id(full)


def test_a_genai_span_around_the_gateway_call_is_not_a_second_request(gateway: Any, spans: Any,
                                                                       tmp_path: Path) -> None:
    import openai
    from opentelemetry import trace

    from alephant_otel import session
    from alephant_otel.testing import Fault

    # What OpenLLMetry / openai-v2 instrumentation write: a GenAI span with usage around the
    # HTTP call (here around two attempts, the first answered 429), plus one with no call beneath.
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=1)
    tracer = trace.get_tracer("some.genai.instrumentation")
    gateway.add_fault(Fault.status(429, retry_after=0.01))
    with client, session("sess_wrapped"):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT) as outer:
            r = client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            outer.set_attribute("gen_ai.usage.input_tokens", r.usage.prompt_tokens)
            outer.set_attribute("gen_ai.usage.output_tokens", r.usage.completion_tokens)
        with tracer.start_as_current_span("chat direct-to-provider") as direct:
            direct.set_attribute("gen_ai.usage.input_tokens", 7)  # an LLM call that did not go through the gateway
    s = _sessions_of_exported(spans, tmp_path)["sess_wrapped"]
    reqs = s.direct_requests
    assert sorted(q.name for q in reqs) == ["chat direct-to-provider", "chat openai/gpt-4o-mini",
                                             "chat openai/gpt-4o-mini"]
    assert sum(q.retried for q in reqs) == 1
    assert sum(q.input_tokens for q in reqs) == r.usage.prompt_tokens + 7


def test_the_anthropic_sdks_own_span_is_not_a_second_request(gateway: Any, spans: Any, tmp_path: Path) -> None:
    import anthropic

    from alephant_otel import session

    client = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)
    with client, session("sess_anthropic_native"):
        msg = client.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=20,
                                     messages=[{"role": "user", "content": "hi"}])
    native = [sp for sp in spans.get_finished_spans() if sp.name.startswith("anthropic.")]
    if not native:
        pytest.skip("this anthropic SDK writes no spans of its own")
    s = _sessions_of_exported(spans, tmp_path)["sess_anthropic_native"]
    reqs = s.direct_requests
    assert [q.request_id is not None for q in reqs] == [True]
    assert reqs[0].input_tokens == msg.usage.input_tokens


# --- summary reads (sessions list): totals folded per run, no request objects -------------


def _summed(obj: object) -> object:
    """:func:`_plain_data` with floats to 12 significant digits: a sum taken in another order
    differs in its last bits (``sessions list`` prints cost to 12 decimal places at most)."""
    if isinstance(obj, float):
        return float(f"{obj:.12g}")
    if isinstance(obj, tuple):
        return tuple(_summed(x) for x in obj)
    return obj


def _as_summary(sessions: list[Session]) -> object:
    """A full read's sessions as a summary read must give them: the same, with no request objects."""
    import copy

    out = copy.deepcopy(sessions)
    for s in out:
        s.requests, s.direct_requests = [], []
        for run in s.walk_runs():
            run.requests = []
    return _summed(_plain_data(out))


def _summary_sessions(records: list[Any]) -> object:
    builder = SessionBuilder(summary=True)
    builder.add_all(records)
    built = builder.build(now_ns=LATER)
    assert all(not s.requests and not s.direct_requests for s in built)
    # A live view builds again from what it read: the first build changed none of it.
    assert _plain_data(builder.build(now_ns=LATER, consume=True)) == _plain_data(built)
    assert builder.build(now_ns=LATER) == []  # consumed
    return _summed(_plain_data(built))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_summary_read_gives_the_sessions_of_a_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Nested runs, runs known only from parent links or only from their requests, a session
    with no session span, odd values, through the fast reader (rows, worker processes)."""
    from alephant_otel.analytics import _fastfile

    path = _varied_file(tmp_path / "t.jsonl")
    full = read_sessions(FileSource(path, workers=workers), now_ns=LATER)
    monkeypatch.setattr(_fastfile, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_fastfile, "_CHUNK_MIN", 997)
    monkeypatch.setattr(_fastfile, "_CHUNK_MAX", 997)
    summary = read_sessions(FileSource(path, workers=workers), now_ns=LATER, summary=True)
    assert len(full.sessions) > 30
    assert sum(s.request_count for s in summary.sessions) == sum(len(s.requests) for s in full.sessions) >= 50
    assert _summed(_plain_data(summary.sessions)) == _as_summary(full.sessions)
    assert (summary.spans, summary.corrupt, _plain_data(summary.outside)) == (
        full.spans, full.corrupt, _plain_data(full.outside))
    # The record path (other sources) folds the same way.
    records = list(FileSource(path).spans(SpanQuery()))
    assert _summary_sessions(records) == _as_summary(build_sessions(records, now_ns=LATER))


def _spec_strategy() -> Any:
    """Sessions whose runs nest, lose their spans, their ids on requests or their parent
    attributes, share agents, and whose requests retry, fail or are intercepted."""
    from fixtures.analytics_data import Req, RunSpec
    from hypothesis import strategies as st

    counter = iter(range(1 << 30))

    def req(start: int, draw: Any) -> Req:
        i = next(counter)
        return Req(
            f"req_{i}", start + draw(st.integers(0, 50)), draw(st.integers(0, 30)),
            inp=draw(st.integers(0, 900)), out=draw(st.integers(0, 300)),
            cost=draw(st.sampled_from([0.0, 1e-7, 0.003, 0.1, 1 / 3])), retry=draw(st.integers(0, 2)),
            intercepted=draw(st.sampled_from([None, None, None, "budget"])), error=draw(st.booleans()),
        )

    @st.composite
    def run(draw: Any, start: int, depth: int) -> RunSpec:
        i = next(counter)
        spec = RunSpec(
            f"run_{i}", draw(st.sampled_from(["triage", "search", "writer", ""])), start, 200,
            emit_span=draw(st.booleans()), ids_on_requests=draw(st.booleans()), parent_attr=draw(st.booleans()),
        )
        spec.requests = [req(start, draw) for _ in range(draw(st.integers(0, 4)))]
        if depth < 2:
            spec.runs = draw(st.lists(run(start + 10, depth + 1), max_size=2))
        return spec

    @st.composite
    def sessions(draw: Any) -> list[Any]:
        out = []
        for k in range(draw(st.integers(1, 3))):
            runs = draw(st.lists(run(k * 1000, 0), min_size=1, max_size=3))
            out.append(SessionSpec(f"sess_{k}", draw(st.sampled_from(["/a", "/a/b"])), f"case {k}", k * 1000, 900,
                                   runs=runs, emit_span=draw(st.booleans())))
        return out

    return st.tuples(sessions(), st.randoms(use_true_random=False))


def test_summary_and_full_reads_agree_on_generated_sessions() -> None:
    """Whatever the shape and order of the spans, a summary read is a full read without requests."""
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_spec_strategy())
    def check(case: Any) -> None:
        specs, rnd = case
        records = list(records_from_otlp(otlp_json(make_spans(specs))["resourceSpans"]))
        # Requests of one run that disagree (what a run continued by two services may write):
        # which agent and parent run wins must not depend on how the requests were kept.
        run_ids = [None, *sorted({r.run_id for r in records if r.run_id})]
        for rec in records:
            if rec.kind == n.SPAN_KIND_REQUEST and rnd.random() < 0.3:
                rec.agent_id = rnd.choice([None, "", "other", rec.agent_id])
                rec.run_parent_id = rnd.choice(run_ids)
                rec.start_ns = rnd.choice([rec.start_ns, rec.start_ns - MS, 0])
                rec.run_id = rnd.choice([rec.run_id, rec.run_id, ""])  # an empty id names no run
        rnd.shuffle(records)
        assert _summary_sessions(records) == _as_summary(build_sessions(records, now_ns=LATER))

    check()


def _continued(kind: str, span_id: str, parent: str | None, name: str, start_ms: int, end_ms: int,
               **fields: Any) -> Any:
    """A span of session ``sess_multi`` as one of the processes that continue it writes it."""
    from alephant_otel.analytics._model import SpanRecord

    rec = SpanRecord("ab" * 16, span_id, parent, name)
    rec.kind, rec.session_id = kind, "sess_multi"
    rec.start_ns, rec.end_ns = T0 + start_ms * MS, T0 + end_ms * MS
    for key, value in fields.items():
        setattr(rec, key, value)
    return rec


def _multi_process_spans() -> list[Any]:
    from alephant_otel.analytics._model import Rollup

    return [
        # The session, continued by a second process whose span names no session.
        _continued(n.SPAN_KIND_SESSION, "s1", None, "session", 0, 100, session_name="Refund case",
                   session_path="/support", rollup=Rollup(requests=2, cost_usd=0.25, input_tokens=10)),
        _continued(n.SPAN_KIND_SESSION, "s2", None, "session", 5, 300, rollup=Rollup(requests=1, cost_usd=0.5)),
        _continued(n.SPAN_KIND_RUN, "ra", "s1", "invoke_agent planner", 10, 250, run_id="run_outer",
                   agent_id="planner"),
        # One run, continued by two processes: neither names the parent run; the second's span
        # sits under the outer run's span, the first's under the session's.
        _continued(n.SPAN_KIND_RUN, "r1", "s1", "invoke_agent triage", 20, 60, run_id="run_inner",
                   agent_id="triage", rollup=Rollup(requests=1, output_tokens=7)),
        _continued(n.SPAN_KIND_RUN, "r2", "ra", "invoke_agent", 15, 90, run_id="run_inner", error=True,
                   rollup=Rollup(requests=2, retries=1, cost_usd=0.125)),
    ]


def test_sessions_and_runs_continued_by_several_processes_combine_their_spans() -> None:
    """In whatever order the spans of a session or run come, the tree has the first name, the
    earliest start, the latest end, the sum of the roll-ups and the parent run found through
    any of them, in full and summary builds alike."""
    import itertools

    from alephant_otel.analytics._model import Rollup

    spans = _multi_process_spans()
    for order in itertools.permutations(spans):
        for summary in (False, True):
            builder = SessionBuilder(summary=summary)
            builder.add_all(order)
            (s,) = builder.build(now_ns=LATER)
            assert (s.name, s.path, s.span_present, s.status) == ("Refund case", "/support", True, "completed")
            assert s.end_ns == T0 + 300 * MS
            assert s.rollup == Rollup(requests=3, cost_usd=0.75, input_tokens=10)
            (outer,) = s.runs
            (inner,) = outer.runs
            assert (inner.run_id, inner.parent_run_id, inner.agent_id, inner.name) == (
                "run_inner", "run_outer", "triage", "triage")
            assert (inner.start_ns, inner.end_ns, inner.error, inner.span_present) == (
                T0 + 15 * MS, T0 + 90 * MS, True, True)
            assert inner.rollup == Rollup(requests=3, retries=1, cost_usd=0.125, output_tokens=7)
            assert (s.request_count, s.cost_usd) == (3, 0.75)  # no request spans: the session's roll-ups


def test_the_first_span_to_name_a_session_or_run_names_it() -> None:
    """Two processes that disagree: the span read first wins (the file's order, a backend's)."""
    first, second = _multi_process_spans()[:2]
    second.session_name, second.session_path = "Refund case (2)", "/support/other"
    runs = _multi_process_spans()[3:]
    runs[1].agent_id, runs[1].name = "writer", "invoke_agent writer"
    for order, want in (([first, second, *runs], ("Refund case", "/support", "triage")),
                        ([second, first, *reversed(runs)], ("Refund case (2)", "/support/other", "writer"))):
        builder = SessionBuilder()
        builder.add_all(order)
        (s,) = builder.build(now_ns=LATER)
        (inner,) = s.runs  # the outer run's span is not among these
        assert (s.name, s.path, inner.agent_id, inner.name) == (*want, want[2])
