"""What a new user meets first in ``alephant-otel sessions``, run as a subprocess (issue 19).

Ids printed in a table paste back into ``sessions show``; a prefix works, an
ambiguous one lists the candidates; exit codes follow DESIGN.md; requests
made outside any session are a "(no session)" line; NaN/Infinity from a
trace file are dropped with one warning and ``--json`` stays strict JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fixtures.analytics_data import (
    Req,
    _Writer,
    headless_session,
    linked_session,
    make_spans,
    support_session,
    write_trace_file,
)

from alephant_otel import _names as n
from alephant_otel.context._ids import new_id


def cli(*argv: str, columns: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``alephant-otel ARGV`` in a child process, its output piped (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "alephant_otel.cli._main", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity, as jq and other strict parsers do."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def real_ids(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three sessions with real-length ids (``sess_`` + 32 hex), made one after the other: they share a prefix."""
    specs = [
        replace(support_session(), session_id=new_id("sess_")),
        replace(headless_session(), session_id=new_id("sess_")),
        replace(linked_session(), session_id=new_id("sess_")),
    ]
    path = write_trace_file(tmp_path / "traces.jsonl", make_spans(specs))
    return path, [s.session_id for s in specs]


# --- ids ------------------------------------------------------------------------------


def test_an_id_copied_from_a_100_column_table_opens_its_session(real_ids: tuple[Path, list[str]]) -> None:
    path, ids = real_ids
    listed = cli("sessions", "list", "--source", str(path), columns=100)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in listed.stdout
    # What a user selects in the first column of each row, pasted back.
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in lines if line.startswith("│ sess_")]
    shown = [r[0] for r in rows]
    assert sorted(shown) == sorted(ids)
    # The cost is whole too: the figure --json gives, to the sixth decimal.
    doc = strict_json(cli("sessions", "list", "--source", str(path), "--json").stdout)
    cost = {s["session_id"]: s["cost_usd"] for s in doc["sessions"]}
    assert {r[0]: r[-1] for r in rows} == {sid: f"${c:.6f}" for sid, c in cost.items()}
    for sid in shown:
        opened = cli("sessions", "show", sid, "--source", str(path), "--json")
        assert opened.returncode == 0, opened.stderr
        assert strict_json(opened.stdout)["session"]["session_id"] == sid


@pytest.mark.parametrize("columns", [60, 80, 120, 250])
def test_narrow_tables_drop_other_columns_never_the_id_or_cost(real_ids: tuple[Path, list[str]], columns: int) -> None:
    path, ids = real_ids
    listed = cli("sessions", "list", "--source", str(path), columns=columns)
    assert listed.returncode == 0, listed.stderr
    assert "…" not in listed.stdout
    for sid in ids:
        assert re.search(rf"│ {sid}( \*)? +│", listed.stdout), sid
    header = next(line for line in listed.stdout.splitlines() if "session" in line and "cost" in line)
    if columns < 100:
        assert "agents" not in header
    if columns >= 250:
        assert "agents" in header
        assert "path" in header
    assert all(len(line) <= columns for line in listed.stdout.splitlines())


def test_piped_output_without_columns_is_one_wide_page(real_ids: tuple[Path, list[str]]) -> None:
    path, ids = real_ids
    listed = cli("sessions", "list", "--source", str(path))
    assert listed.returncode == 0, listed.stderr
    header = next(line for line in listed.stdout.splitlines() if "session" in line and "cost" in line)
    assert "agents" in header
    assert all(sid in listed.stdout for sid in ids)


def test_a_unique_prefix_opens_the_session(real_ids: tuple[Path, list[str]]) -> None:
    path, ids = real_ids
    # The random tail differs between the three: a prefix ending in it is unique.
    target = ids[1]
    others = [i for i in ids if i != target]
    length = next(k for k in range(6, len(target)) if not any(o.startswith(target[:k]) for o in others))
    opened = cli("sessions", "show", target[:length], "--source", str(path), "--json")
    assert opened.returncode == 0, opened.stderr
    assert strict_json(opened.stdout)["session"]["session_id"] == target
    text = cli("sessions", "show", target[:length], "--source", str(path))
    assert text.returncode == 0
    assert f"session {target}" in text.stdout


def test_an_ambiguous_prefix_is_one_line_listing_the_candidates(real_ids: tuple[Path, list[str]]) -> None:
    path, ids = real_ids
    common = ids[0]
    while not all(i.startswith(common) for i in ids):
        common = common[:-1]
    assert len(common) > len("sess_")  # ids made in the same second share their time part
    shown = cli("sessions", "show", common, "--source", str(path))
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert shown.stderr.count("\n") == 1
    assert f"session id prefix {common!r} matches 3 sessions" in shown.stderr
    for sid in ids:
        assert sid in shown.stderr
    assert "Traceback" not in shown.stderr


def test_an_unknown_id_is_exit_1(real_ids: tuple[Path, list[str]]) -> None:
    path, _ = real_ids
    shown = cli("sessions", "show", "sess_nope", "--source", str(path))
    assert (shown.returncode, shown.stderr) == (1, f"alephant-otel: no session sess_nope in {path}; 3 sessions seen\n")


# --- help -------------------------------------------------------------------------------


def test_show_help_lists_only_what_applies_to_one_session() -> None:
    shown = cli("sessions", "show", "--help")
    assert shown.returncode == 0
    for meaningless in ("--sort", "--limit", "--min-cost", "--agent", "--status"):
        assert meaningless not in shown.stdout
    assert "a session id or unique prefix, as printed by `sessions list`" in " ".join(shown.stdout.split())
    listed = cli("sessions", "list", "--help")
    for option in ("--sort", "--limit", "--min-cost"):
        assert option in listed.stdout
    # Both time bounds name every unit parse_time takes.
    for command in (("sessions", "list"), ("sessions", "vitals"), ("ui",)):
        text = " ".join(cli(*command, "--help").stdout.split())
        for option in ("--since", "--until"):
            described = text.split(f"{option} ")[-1]
            assert "90s, 30m, 1h, 2d, 1w" in described.split(" --")[0], (command, option, described[:160])


def test_one_session_seen_is_said_in_the_singular(tmp_path: Path) -> None:
    path = tmp_path / "one.otlp.jsonl"
    path.write_text(_line(_span("a", {})))
    shown = cli("sessions", "show", "sess_nope", "--source", str(path))
    assert (shown.returncode, shown.stderr) == (1, f"alephant-otel: no session sess_nope in {path}; 1 session seen\n")


# --- exit codes ---------------------------------------------------------------------------


def test_a_file_with_no_valid_span_line_is_exit_1(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 40)
    listed = cli("sessions", "list", "--source", str(garbage))
    assert listed.returncode == 1
    assert listed.stdout == ""
    assert listed.stderr.startswith(f"alephant-otel: no valid span line in {garbage}: ")
    assert listed.stderr.count("\n") == 1


def test_an_empty_file_is_an_empty_answer(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    listed = cli("sessions", "list", "--source", str(empty), "--json")
    assert listed.returncode == 0, listed.stderr
    assert strict_json(listed.stdout)["sessions"] == []


def test_a_plain_http_source_is_a_usage_error_naming_the_forms() -> None:
    listed = cli("sessions", "list", "--source", "http://127.0.0.1:1")
    assert listed.returncode == 2
    assert "no trace file" not in listed.stderr
    assert listed.stderr == (
        "alephant-otel: source 'http://127.0.0.1:1' does not say which backend it is: use "
        "tempo+http://127.0.0.1:1, jaeger+http://127.0.0.1:1, phoenix+http://127.0.0.1:1, "
        "clickhouse+http://127.0.0.1:1\n"
    )


def test_a_bad_option_value_is_exit_2(tmp_path: Path) -> None:
    listed = cli("sessions", "list", "--source", str(tmp_path / "x"), "--since", "soon")
    assert listed.returncode == 2
    assert listed.stderr.count("\n") == 1


# --- requests outside any session ------------------------------------------------------------


def _with_sessionless_requests(tmp_path: Path) -> Path:
    w = _Writer()
    w.session(support_session())
    # Two gateway calls made with no session() open: request spans without session ids.
    w.request(Req("req_x1", 100, 200, inp=11, out=7, cost=0.25), {}, None)
    w.request(Req("req_x2", 300, 100, inp=5, out=3, cost=0.5, http_status=500, error=True), {}, None)
    w.stray()
    spans = list(w.exporter.get_finished_spans())
    w.provider.shutdown()
    return write_trace_file(tmp_path / "traces.jsonl", spans)


def test_requests_outside_any_session_are_one_no_session_line(tmp_path: Path) -> None:
    path = _with_sessionless_requests(tmp_path)
    listed = cli("sessions", "list", "--source", str(path), columns=120)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "(no session)" in line)
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert "2" in cells  # requests
    assert "16/10" in cells  # tokens in/out
    assert "$0.7500" in cells
    assert "1 of 1 sessions and 2 request(s) outside any session" in listed.stdout

    doc = strict_json(cli("sessions", "list", "--source", str(path), "--json").stdout)
    assert doc["sessions_seen"] == 1
    outside = doc["no_session"]
    assert outside["request_count"] == 2
    assert (outside["input_tokens"], outside["output_tokens"]) == (16, 10)
    assert outside["cost_usd"] == pytest.approx(0.75)
    assert outside["errors"] == 1
    assert outside["first_started_at"] == "2025-06-15T15:06:40.100000Z"
    # Not added to any session.
    assert doc["sessions"][0]["request_count"] == len(support_session().all_requests())
    # A session filter leaves them out: they have no agent, path or status.
    filtered = strict_json(cli("sessions", "list", "--source", str(path), "--json", "--path", "/support").stdout)
    assert filtered["no_session"]["request_count"] == 0


def test_the_no_session_line_is_the_same_on_the_fast_and_the_record_path(tmp_path: Path) -> None:
    """The trace file is read as rows (fast path); a compressed one record by record."""
    import gzip

    path = _with_sessionless_requests(tmp_path)
    packed = tmp_path / "traces.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    plain = strict_json(cli("sessions", "list", "--source", str(path), "--json").stdout)
    rotated = strict_json(cli("sessions", "list", "--source", str(packed), "--json").stdout)
    assert plain["no_session"] == rotated["no_session"]
    assert plain["no_session"]["request_count"] == 2


def test_a_real_call_outside_a_session_shows_up(tmp_path: Path) -> None:
    """The library itself, in a script: one call in a session, one outside, to the emulator."""
    trace = tmp_path / "app.jsonl"
    script = textwrap.dedent(
        f"""
        import httpx
        from opentelemetry import trace
        import alephant_otel
        from alephant_otel.testing import GatewayEmulator

        with GatewayEmulator() as gw:
            alephant_otel.configure(gateway_url=gw.url, trace_file={str(trace)!r})
            body = {{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "hi"}}]}}
            with httpx.Client() as client:
                client.post(gw.url + "/v1/chat/completions", json=body)
                with alephant_otel.session(path="/first"):
                    client.post(gw.url + "/v1/chat/completions", json=body)
        trace.get_tracer_provider().shutdown()
        """
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    doc = strict_json(cli("sessions", "list", "--source", str(trace), "--json").stdout)
    assert len(doc["sessions"]) == 1
    assert doc["sessions"][0]["request_count"] == 1
    assert doc["no_session"]["request_count"] == 1
    assert doc["no_session"]["input_tokens"] > 0


# --- vitals wording ----------------------------------------------------------------------------


def test_vitals_counts_failed_and_intercepted_the_same_way_everywhere(real_ids: tuple[Path, list[str]]) -> None:
    path, _ = real_ids
    shown = cli("sessions", "vitals", "--source", str(path), columns=200)
    assert shown.returncode == 0, shown.stderr
    # The support session: one 429 (failed), one interception. "2 errors" beside "1 failed" read as a contradiction.
    assert "1 failed, 1 intercepted" in shown.stdout
    assert "intercepted: 1 request (PII detected in prompt)" in shown.stdout
    assert "failed: 1 request ended in error (not intercepted)" in shown.stdout
    assert "intercepted: 1 intercepted" not in shown.stdout
    doc = strict_json(cli("sessions", "vitals", "--source", str(path), "--json").stdout)
    assert (doc["totals"]["errors"], doc["totals"]["failed"], doc["totals"]["intercepted"]) == (2, 1, 1)


# --- numbers that are not numbers ------------------------------------------------------------

#: What the CLI says it dropped, after the count.
DROPPED = "(NaN, infinite, negative, boolean or too large cost, tokens)"


def _span(span_id: str, attrs: dict[str, Any], session: str | None = "sess_x") -> dict[str, Any]:
    base = {n.ATTR_SPAN_KIND: {"stringValue": "request"}, n.ATTR_REQUEST_ID: {"stringValue": f"req_{span_id}"}}
    if session is not None:
        base[n.ATTR_SESSION_ID] = {"stringValue": session}
    return {
        "traceId": "ab" * 16,
        "spanId": span_id * 8,
        "name": "chat gpt-4o-mini",
        "startTimeUnixNano": "1750000000000000000",
        "endTimeUnixNano": "1750000001000000000",
        "attributes": [{"key": k, "value": v} for k, v in {**base, **attrs}.items()],
    }


def _line(*spans: dict[str, Any]) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}) + "\n"


@pytest.mark.parametrize("gzip_it", [False, True], ids=["rows", "records"])
def test_nan_and_infinity_are_dropped_with_one_warning_and_json_stays_strict(tmp_path: Path, gzip_it: bool) -> None:
    import gzip

    text = _line(
        _span("01", {n.ATTR_COST_USD: {"doubleValue": "Infinity"}, n.GEN_AI_USAGE_INPUT_TOKENS: {"intValue": "10"}}),
        _span("02", {n.ATTR_COST_USD: {"doubleValue": "NaN"}, n.GEN_AI_USAGE_OUTPUT_TOKENS: {"doubleValue": "-inf"}}),
        _span("03", {n.ATTR_COST_USD: {"doubleValue": 0.5}, n.GEN_AI_USAGE_INPUT_TOKENS: {"doubleValue": "Infinity"}}),
        _span("04", {n.ATTR_COST_USD: {"stringValue": "nan"}}, session=None),
    )
    path = tmp_path / "t.jsonl"
    if gzip_it:
        path = tmp_path / "t.jsonl.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    warning = f"warning: dropped 5 corrupt number(s) {DROPPED} in {path}\n"
    for verb in ("list", "vitals"):
        got = cli("sessions", verb, "--source", str(path), "--json")
        assert got.returncode == 0, got.stderr
        assert got.stderr == warning
        doc = strict_json(got.stdout)
        assert doc["corrupt_values"] == 5
    doc = strict_json(cli("sessions", "list", "--source", str(path), "--json").stdout)
    (s,) = doc["sessions"]
    assert s["cost_usd"] == 0.5
    assert (s["input_tokens"], s["output_tokens"]) == (10, 0)
    assert doc["no_session"]["cost_usd"] == 0
    shown = cli("sessions", "show", "sess_x", "--source", str(path), "--json")
    assert strict_json(shown.stdout)["session"]["cost_usd"] == 0.5
    for verb in (["list"], ["vitals"], ["show", "sess_x"]):
        text_out = cli("sessions", *verb, "--source", str(path), columns=200).stdout.replace(str(path), "")
        assert "inf" not in text_out.lower()
        assert "nan" not in text_out.lower()


@pytest.mark.parametrize("gzip_it", [False, True], ids=["rows", "records"])
def test_impossible_costs_and_counts_are_dropped_counted_and_left_out_of_the_figures(
    tmp_path: Path, gzip_it: bool
) -> None:
    """Issue 36: negative, boolean, over 10^9 tokens, over $10^6 a request: corrupt, like NaN."""
    import gzip

    cost, inp, out = n.ATTR_COST_USD, n.GEN_AI_USAGE_INPUT_TOKENS, n.GEN_AI_USAGE_OUTPUT_TOKENS
    text = _line(
        _span("01", {cost: {"doubleValue": -0.5}, inp: {"intValue": "10"}}),
        _span("02", {inp: {"intValue": "-3"}, out: {"boolValue": True}}),
        _span("03", {cost: {"boolValue": True}, out: {"intValue": "1000000001"}}),
        _span("04", {cost: {"doubleValue": 1000000.5}, inp: {"intValue": "999999999"}}),
        # The limits themselves are possible.
        _span("05", {cost: {"doubleValue": 0.25}, inp: {"intValue": "1000000000"}, out: {"intValue": "7"}}),
        _span("06", {cost: {"doubleValue": -2.0}}, session=None),
    )
    path = tmp_path / "t.jsonl"
    if gzip_it:  # a compressed file is read record by record, not by the row reader
        path = tmp_path / "t.jsonl.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    warning = f"warning: dropped 7 corrupt number(s) {DROPPED} in {path}\n"
    for verb in (["list"], ["vitals"], ["show", "sess_x"]):
        got = cli("sessions", *verb, "--source", str(path), "--json")
        assert got.returncode == 0, got.stderr
        assert got.stderr == warning
        assert strict_json(got.stdout)["corrupt_values"] == 7
    doc = strict_json(cli("sessions", "list", "--source", str(path), "--json").stdout)
    (s,) = doc["sessions"]
    assert s["cost_usd"] == 0.25
    assert (s["input_tokens"], s["output_tokens"]) == (10 + 999_999_999 + 1_000_000_000, 7)
    assert doc["no_session"]["cost_usd"] == 0
    shown = strict_json(cli("sessions", "show", "sess_x", "--source", str(path), "--json").stdout)["session"]
    by_id = {q["request_id"]: q for q in shown["requests"]}
    assert shown["cost_usd"] == 0.25
    assert (by_id["req_02"]["input_tokens"], by_id["req_03"]["output_tokens"]) == (0, 0)
    assert (by_id["req_01"]["cost_usd"], by_id["req_04"]["cost_usd"]) == (0, 0)
    human = cli("sessions", "show", "sess_x", "--source", str(path), columns=200)
    assert human.stderr == warning
    assert "-$" not in human.stdout
    assert "$-" not in human.stdout
    assert "1,000,000,001" not in human.stdout


def test_a_json_infinity_literal_in_a_time_is_a_corrupt_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python's json module reads the non-standard literal (orjson refuses the line); int() of it overflows."""
    from alephant_otel.analytics import _fastfile
    from alephant_otel.cli._main import main

    monkeypatch.setattr(_fastfile, "decoder", ("json", json.loads))
    path = tmp_path / "t.jsonl"
    good = _line(_span("01", {n.ATTR_COST_USD: {"doubleValue": 0.25}}))
    bad = _line(_span("02", {n.ATTR_COST_USD: {"doubleValue": 0.5}})).replace('"1750000001000000000"', "Infinity")
    path.write_text(good + bad)
    assert main(["sessions", "list", "--source", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"warning: skipped 1 corrupt line(s) in {path}\n"
    assert strict_json(captured.out)["sessions"][0]["cost_usd"] == 0.25


def test_a_terminal_too_narrow_for_id_and_cost_folds_the_id_and_keeps_every_character(
    real_ids: tuple[Path, list[str]],
) -> None:
    path, ids = real_ids
    listed = cli("sessions", "list", "--source", str(path), columns=40)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(len(line) <= 40 for line in lines)
    first_column = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    for sid in ids:
        assert sid in first_column.replace(" *", "")
    assert re.findall(r"\$\d\.\d{6}", listed.stdout)  # the cost whole


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "list", "--sort", "vibes"],
        ["sessions", "list", "--min-cost", "nan"],
        ["sessions", "list", "--active-window", "inf"],
        ["sessions", "show"],
        ["sessions"],
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv: list[str]) -> None:
    got = cli(*argv)
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1
    assert got.stderr.startswith("alephant-otel")
    assert "Traceback" not in got.stderr


def test_a_json_nan_literal_cost_is_dropped_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``{"doubleValue": NaN}`` (not quoted) reaches the row reader as a float when json decodes the line."""
    from alephant_otel.analytics import _fastfile
    from alephant_otel.cli._main import main

    monkeypatch.setattr(_fastfile, "decoder", ("json", json.loads))
    path = tmp_path / "t.jsonl"
    line = _line(
        _span("01", {n.ATTR_COST_USD: {"doubleValue": 0.25}}),
        _span("02", {n.ATTR_COST_USD: {"doubleValue": 1.5}}),
    )
    path.write_text(line.replace("1.5", "NaN"))
    assert main(["sessions", "list", "--source", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"warning: dropped 1 corrupt number(s) {DROPPED} in {path}\n"
    assert strict_json(captured.out)["sessions"][0]["cost_usd"] == 0.25
