"""``alephant-otel sessions``, run in-process through ``main([...])``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.analytics_data import headless_session, standard_file, support_session

from alephant_otel.cli._main import main


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    return standard_file(tmp_path)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_list_json(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "sessions", "list", "--source", str(trace_file), "--json", "--sort", "cost")
    assert doc["schema"] == "alephant-otel/sessions.list/1"
    assert doc["source"] == str(trace_file)
    assert doc["corrupt_lines"] == 0
    assert doc["sessions_seen"] == 3
    rows = {r["session_id"]: r for r in doc["sessions"]}
    assert [r["session_id"] for r in doc["sessions"]] == ["sess_a", "sess_b", "sess_c"]
    a = rows["sess_a"]
    spec = support_session().all_requests()
    assert a["request_count"] == 5
    assert a["retries"] == 1
    assert a["intercepted"] == 1
    assert a["errors"] == 2
    assert a["cost_usd"] == pytest.approx(sum(r.cost for r in spec))
    assert (a["input_tokens"], a["output_tokens"]) == (sum(r.inp for r in spec), sum(r.out for r in spec))
    assert a["status"] == "intercepted"
    assert a["runs"] == 3
    assert a["session_span"] is True
    assert a["rollup_matches"] is True
    assert a["started_at"] == "2025-06-15T15:06:40Z"
    assert rows["sess_b"]["session_span"] is False
    assert rows["sess_b"]["request_count"] == len(headless_session().all_requests())


def test_list_filters(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["sessions", "list", "--source", str(trace_file), "--json"]
    ids = lambda *extra: [r["session_id"] for r in run_json(capsys, *base, *extra)["sessions"]]  # noqa: E731
    assert ids("--path", "/billing", "--sort", "cost") == ["sess_b", "sess_c"]
    assert ids("--status", "intercepted") == ["sess_a"]
    assert ids("--agent", "doer") == ["sess_c"]
    assert ids("--min-cost", "0.0001") == ["sess_a"]
    assert ids("--sort", "started", "--limit", "2") == ["sess_c", "sess_b"]
    assert ids("--since", "2025-06-15T15:07:05Z") == ["sess_c"]
    assert ids("--until", "2025-06-15T15:06:50Z") == ["sess_a"]


def test_show_json_tree(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "sessions", "show", "sess_a", "--source", str(trace_file), "--json")
    assert doc["schema"] == "alephant-otel/sessions.show/1"
    s = doc["session"]
    total = s["cost_usd"]
    (triage, writer) = s["runs_tree"]
    assert triage["run_id"] == "run_triage"
    assert writer["run_id"] == "run_writer"
    assert [q["request_id"] for q in triage["requests"]] == ["req_1", "req_4"]
    (search,) = triage["runs"]
    assert [q["request_id"] for q in search["requests"]] == ["req_2", "req_3"]
    assert search["requests"][1]["retry_attempt"] == 1
    assert triage["requests"][1]["streaming"] is True
    assert writer["requests"][0]["policy_events"] == [
        {"reason": "PII detected in prompt", "code": "pii", "status": 400}
    ]
    assert triage["cost_share"] == pytest.approx(1.0)
    assert search["cost_share"] == pytest.approx(0.000156 / total, abs=1e-6)
    shares = [q["cost_share"] for run in (triage, search, writer) for q in run["requests"]]
    assert sum(shares) == pytest.approx(1.0, abs=1e-5)
    assert s["policy_events"][0]["reason"] == "PII detected in prompt"


def test_show_without_session_span(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "sessions", "show", "sess_b", "--source", str(trace_file), "--json")
    s = doc["session"]
    assert s["session_span"] is False
    (b1,) = s["runs_tree"]
    assert b1["run_span"] is False
    assert b1["runs"][0]["run_id"] == "run_b2"


def test_human_output(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "show", "sess_a", "--source", str(trace_file)]) == 0
    out = capsys.readouterr().out
    assert "session sess_a" in out
    assert "intercepted: PII detected in prompt" in out
    assert "retry 1" in out
    assert "stream" in out
    assert "(60%)" in out
    assert main(["sessions", "list", "--source", str(trace_file)]) == 0
    out = capsys.readouterr().out
    assert "sess_a" in out
    # sess_b has no session span: its status says so, and its id cell holds the id alone.
    row = next(line for line in out.splitlines() if "sess_b" in line).split("│")
    assert row[1].strip() == "sess_b"
    assert row[3].strip().endswith("*")
    assert "3 of 3 sessions" in out
    assert main(["sessions", "vitals", "--source", str(trace_file)]) == 0
    out = capsys.readouterr().out
    assert "cost by agent" in out
    assert "cost by path" in out
    assert "/support/triage" in out


def test_vitals_json(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "sessions", "vitals", "--source", str(trace_file), "--json")
    assert doc["schema"] == "alephant-otel/sessions.vitals/1"
    assert doc["totals"]["sessions"] == 3
    assert doc["totals"]["request_count"] == 9
    assert doc["totals"]["by_status"] == {"active": 0, "completed": 2, "intercepted": 1}
    assert doc["by_agent"][0]["key"] == "triage"
    flags = {s["session_id"]: [f["kind"] for f in s["flags"]] for s in doc["sessions"]}
    assert "intercepted" in flags["sess_a"]


def test_unknown_session(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "show", "sess_x", "--source", str(trace_file)]) == 1
    err = capsys.readouterr().err
    assert err == f"alephant-otel: no session sess_x in {trace_file}; 3 sessions seen\n"


def test_missing_file_and_env_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "none.jsonl"
    monkeypatch.setenv("ALEPHANT_TRACE_FILE", str(missing))
    assert main(["sessions", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no trace file at {missing}" in err
    assert "Traceback" not in err
    standard_file(tmp_path)
    monkeypatch.setenv("ALEPHANT_TRACE_FILE", str(tmp_path / "traces.jsonl"))
    assert len(run_json(capsys, "sessions", "list", "--json")["sessions"]) == 3


def test_corrupt_lines_warn_with_count(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with trace_file.open("a") as fh:
        fh.write('garbage\n{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}\n')
    assert main(["sessions", "list", "--source", str(trace_file), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["corrupt_lines"] == 2
    assert captured.err == f"warning: skipped 2 corrupt line(s) in {trace_file}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "soon"], "bad time 'soon'"),
        (["--source", "zipkin+http://127.0.0.1:9"], "unknown source"),
        (["--source", "tempo+http://"], "bad source"),
        (["--source", "http://127.0.0.1:9"], "use tempo+http://127.0.0.1:9, jaeger+http://127.0.0.1:9, phoenix+http"),
    ],
)
def test_bad_input_is_one_line_and_a_usage_error(
    trace_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A bad option value is a usage error (exit 2, DESIGN.md), said in one line."""
    full = (
        ["sessions", "list", *argv] if "--source" in argv else ["sessions", "list", "--source", str(trace_file), *argv]
    )
    assert main(full) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions"]) == 2
    assert main(["sessions", "list", "--sort", "vibes"]) == 2
    assert main([]) == 2  # the help, and the usage-error status
    assert "usage: alephant-otel" in capsys.readouterr().out



def test_sessions_commands_run_without_the_cyclic_gc_and_restore_it(
    trace_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # There are no cycles among the spans read, and after a big read the collector
    # rescanned a million objects while the command printed; the caller's setting
    # comes back, whatever the outcome.
    import gc

    from alephant_otel.analytics import _reconstruct
    from alephant_otel.cli import _list as _cli

    during: list[tuple[str, bool]] = []
    real_build, real_list_json = _reconstruct.SessionBuilder.build, _cli.list_json

    def build(self, **kw):
        during.append(("build", gc.isenabled()))
        return real_build(self, **kw)

    def list_json(*args, **kw):
        during.append(("output", gc.isenabled()))
        return real_list_json(*args, **kw)

    monkeypatch.setattr(_reconstruct.SessionBuilder, "build", build)
    monkeypatch.setattr(_cli, "list_json", list_json)
    assert gc.isenabled()
    try:
        assert main(["sessions", "list", "--source", str(trace_file), "--json"]) == 0
        assert during == [("build", False), ("output", False)]
        assert gc.isenabled()
        assert main(["sessions", "show", "no_such_session", "--source", str(trace_file)]) == 1
        assert gc.isenabled()
        gc.disable()
        assert main(["sessions", "vitals", "--source", str(trace_file), "--json"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    capsys.readouterr()


def test_money_and_retry_counts_read_right() -> None:
    from alephant_otel.analytics._render import money as _money
    from alephant_otel.analytics._render import retries as _retries

    assert [_money(x) for x in (0, 4e-8, 0.0000042, 0.25)] == ["$0", "<$0.000001", "$0.000004", "$0.2500"]
    assert [_retries(k) for k in (0, 1, 2)] == ["0 retries", "1 retry", "2 retries"]


def test_request_error_label_has_no_dangling_space_and_no_success_status() -> None:
    from alephant_otel.analytics._model import Request
    from alephant_otel.cli._show import _request_label

    def label(status: int | None, message: str) -> str:
        req = Request("req_1", "t" * 32, "s" * 16, None, "chat m", 0, 10**6, error=True, http_status=status,
                      status_message=message)
        return _request_label(req, 0.0)

    assert label(429, "").endswith("[red]error 429[/]")
    assert label(None, "boom").endswith("[red]error boom[/]")
    assert label(None, "").endswith("[red]error[/]")
    # A 200 whose body reported the error (a stream's error event): the status says nothing.
    assert label(200, "overloaded_error").endswith("[red]error overloaded_error[/]")


def test_show_marks_a_request_whose_body_was_not_read_to_its_end(
    gateway, spans, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import openai

    from alephant_otel import session
    from alephant_otel.export._tracefile import TraceFileExporter

    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    with client, session("sess_cut"):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
        stream = client.chat.completions.create(model="openai/gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "a long story"}])
        next(iter(stream))
        stream.close()  # "stop generating"
    path = tmp_path / "cut.otlp.jsonl"
    exporter = TraceFileExporter(path)
    exporter.export(spans.get_finished_spans())
    exporter.shutdown()
    doc = run_json(capsys, "sessions", "show", "sess_cut", "--source", str(path), "--json")
    assert [(r["streaming"], r["incomplete"], r["error"]) for r in doc["session"]["requests"]] == [
        (False, False, False), (True, True, False)]
    assert main(["sessions", "show", "sess_cut", "--source", str(path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "chat " in line]
    assert ["incomplete" in line for line in lines] == [False, True]


def _compress(src: Path, dest: Path, how: str) -> Path:
    import bz2
    import gzip
    import lzma

    dest.write_bytes({"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[how](src.read_bytes()))
    return dest


@pytest.mark.parametrize("how", ["gzip", "bz2", "xz"])
def test_a_rotated_compressed_trace_file_reads_like_the_plain_one(
    how: str, trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # logrotate's "compress" leaves traces.jsonl.1.gz; told by its first bytes, not its name.
    packed = _compress(trace_file, tmp_path / "traces.jsonl.1", how)
    for command in (["list"], ["vitals"], ["show", "sess_a"]):
        plain = run_json(capsys, "sessions", *command, "--source", str(trace_file), "--json")
        rotated = run_json(capsys, "sessions", *command, "--source", str(packed), "--json")
        assert rotated.pop("source") == str(packed)
        plain.pop("source")
        assert rotated == plain
        assert rotated["corrupt_lines"] == 0


@pytest.mark.parametrize("how", ["gzip", "bz2", "xz"])
def test_a_cut_or_damaged_compressed_file_keeps_what_came_before_with_one_warning(
    how: str, trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = trace_file.read_bytes()
    # Big enough that the cut falls well after the first sessions' lines.
    big = tmp_path / "big.jsonl"
    big.write_bytes(text * 200)
    packed = _compress(big, tmp_path / "big.jsonl.gz", how).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    damaged = tmp_path / "damaged"
    damaged.write_bytes(packed[:200] + bytes(b ^ 0x5A for b in packed[200:400]) + packed[400:])
    assert main(["sessions", "list", "--source", str(cut), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["corrupt_lines"] == 1
    assert captured.err == f"warning: skipped 1 corrupt line(s) in {cut}\n"
    # Damaged in its first bytes, the file has no span line to give: an unreadable source (exit 1).
    assert main(["sessions", "list", "--source", str(damaged), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"alephant-otel: cannot read {damaged}: the compressed data is cut or damaged before any span line\n"
    )
    # The cut file still gives the sessions whose lines came before the cut.
    assert main(["sessions", "list", "--source", str(cut), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sessions_seen"] == 3


def test_control_characters_in_span_data_never_reach_the_terminal(
    trace_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Spans come from other processes and backends. An ESC in a name would otherwise be an
    # escape sequence on the reader's terminal: clear the screen, retitle it, hide what follows.
    evil = "\x1b[2J\x1b]0;owned\x07\rhidden\x9b31m"
    text = trace_file.read_text()
    for plain in ('"triage"', '"/support/triage"', '"Refund case"', '"PII detected in prompt"'):
        assert plain in text
        text = text.replace(plain, json.dumps(plain.strip('"') + evil))
    trace_file.write_text(text)
    for command in (["list"], ["vitals"], ["show", "sess_a"]):
        assert main(["sessions", *command, "--source", str(trace_file)]) == 0
        out = capsys.readouterr().out
        assert not any(ch in out for ch in "\x1b\x07\r\x9b"), command
        assert "\\x1b[2J" in out, command  # shown, as text (table cells may cut the rest)
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x0dhidden\\x9b31m" in out  # the show tree has room for all of it
    # --json keeps the data as it is (JSON escapes it).
    doc = run_json(capsys, "sessions", "list", "--source", str(trace_file), "--json")
    assert doc["sessions"][0]["path"].endswith(evil) or any(r["path"].endswith(evil) for r in doc["sessions"])
