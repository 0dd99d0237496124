"""The steps after the demo, as a new user takes them: every one from the real CLI in a child process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from _util import BIN, clean_env
from fixtures.analytics_data import (
    Req,
    RunSpec,
    SessionSpec,
    headless_session,
    make_spans,
    support_session,
    write_trace_file,
)

from alephant_otel.context._ids import new_id

# A session of two runs (one nested) with a request in each, made through the real openai SDK.
_SESSION_SCRIPT = """
import json, sys
import openai
from alephant_otel import configure, current, run, session
from alephant_otel.testing import GatewayEmulator

with GatewayEmulator() as gw:
    configure(gateway_url=gw.url, trace_file=sys.argv[1])
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-test")
    ids = {}
    for sid in ("sess_paste_a", "sess_paste_b"):
        with session(sid), run(agent_id="triage"):
            outer = current().run_id
            client.embeddings.create(model="openai/text-embedding-3-small", input="one two")
            with run(agent_id="search"):
                ids[sid] = {"outer": outer, "inner": current().run_id}
                client.embeddings.create(model="openai/text-embedding-3-small", input="three")
    print(json.dumps(ids))
"""


def _cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "alephant-otel"), *argv],
        capture_output=True,
        text=True,
        env=env or clean_env(COLUMNS="200"),
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, str]]]:
    path = tmp_path_factory.mktemp("paste") / "traces.otlp.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _SESSION_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return path, json.loads(done.stdout.splitlines()[-1])


def _request_ids(path: Path, session_id: str) -> list[str]:
    shown = json.loads(_cli("sessions", "show", session_id, "--source", str(path), "--json").stdout)
    found: list[str] = []
    runs = list(shown["session"]["runs_tree"])
    while runs:
        run = runs.pop()
        found += [r["request_id"] for r in run["requests"]]
        runs += run["runs"]
    return sorted(found)


def test_a_pasted_run_or_request_id_opens_the_session_that_holds_it(
    two_sessions: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    path, ids = two_sessions
    for sid in ("sess_paste_a", "sess_paste_b"):
        requests = _request_ids(path, sid)
        assert len(requests) == 2
        # Whole ids and unique prefixes of them, as a user copies them out of the tree.
        for pasted in (ids[sid]["outer"], ids[sid]["inner"], requests[0], requests[1], requests[1][:-4]):
            shown = _cli("sessions", "show", pasted, "--source", str(path), "--json")
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout)["session"]["session_id"] == sid
            tree = _cli("sessions", "show", pasted, "--source", str(path))
            assert tree.returncode == 0, tree.stderr
            assert f"session {sid}" in tree.stdout


def test_an_id_in_no_session_is_still_one_line_and_exit_1(
    two_sessions: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    path, _ = two_sessions
    shown = _cli("sessions", "show", "run_nope", "--source", str(path))
    assert shown.returncode == 1
    assert shown.stderr == f"alephant-otel: no session run_nope in {path}; 2 sessions seen\n"


def test_a_prefix_shared_by_runs_of_two_sessions_lists_them(
    two_sessions: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    path, _ = two_sessions
    # Every run id starts "run_": in both sessions, so it is ambiguous, not a guess.
    shown = _cli("sessions", "show", "run_", "--source", str(path))
    assert shown.returncode == 1
    assert shown.stderr.count("\n") == 1
    assert "sess_paste_a" in shown.stderr
    assert "sess_paste_b" in shown.stderr


def test_html_says_where_it_wrote(two_sessions: tuple[Path, dict[str, dict[str, str]]], tmp_path: Path) -> None:
    path, _ = two_sessions
    page = tmp_path / "one.html"
    done = _cli("sessions", "show", "sess_paste_a", "--source", str(path), "--html", str(page))
    assert done.returncode == 0, done.stderr
    assert page.stat().st_size > 0
    assert done.stdout == f"wrote session sess_paste_a to {page} (one self-contained page: open it in a browser)\n"


def test_a_missing_source_that_was_passed_says_only_that(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    done = _cli("sessions", "list", "--source", str(missing))
    assert done.returncode == 1
    # --source was given: no advice to set it.
    assert done.stderr == f"alephant-otel: no trace file at {missing}\n"


def test_the_bare_list_without_a_demo_says_how_to_name_a_file(tmp_path: Path) -> None:
    env = clean_env(COLUMNS="200", XDG_DATA_HOME=str(tmp_path))
    done = _cli("sessions", "list", env=env)
    assert done.returncode == 1
    default = tmp_path / "alephant-otel" / "traces.otlp.jsonl"
    assert done.stderr == f"alephant-otel: no trace file at {default} (set ALEPHANT_TRACE_FILE or pass --source)\n"


# --- alephant-otel emulator -----------------------------------------------------------------

_ENV_ONLY_SCRIPT = """
import openai
from alephant_otel import configure, run, session

configure()  # ALEPHANT_GATEWAY_URL and ALEPHANT_TRACE_FILE from the environment
client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
with session("sess_offline", name="Tried offline", path="/try"), run(agent_id="helper"):
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi there"}])
"""


def _start_emulator(*argv: str) -> tuple[subprocess.Popen[str], str, str]:
    """The emulator in a child process, with its first two lines (the URL alone, then how to use it)."""
    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "emulator", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert proc.stdout is not None
    # Both lines read here: communicate() later reads the pipe, not this reader's buffer.
    return proc, proc.stdout.readline().strip(), proc.stdout.readline()


def test_the_emulator_serves_a_script_configured_only_through_the_environment(tmp_path: Path) -> None:
    proc, url, _ = _start_emulator()
    try:
        assert url.startswith("http://127.0.0.1:"), url
        trace_file = tmp_path / "traces.otlp.jsonl"
        env = clean_env(
            ALEPHANT_GATEWAY_URL=url,
            ALEPHANT_TRACE_FILE=str(trace_file),
            OPENAI_BASE_URL=url + "/v1",
            OPENAI_API_KEY="sk-anything",
        )
        script = tmp_path / "app.py"
        script.write_text(textwrap.dedent(_ENV_ONLY_SCRIPT))
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        shown = _cli("sessions", "show", "sess_offline", "--source", str(trace_file), "--json")
        assert shown.returncode == 0, shown.stderr
        session = json.loads(shown.stdout)["session"]
        assert (session["name"], session["path"], session["agents"], session["request_count"]) == (
            "Tried offline",
            "/try",
            ["helper"],
            1,
        )
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert err == ""
    # The emulator said what the gateway would have grouped the request by.
    lines = [line for line in out.splitlines() if line.startswith("POST /v1/chat/completions")]
    assert len(lines) == 1, out
    for header in (
        "alephant-session-id=sess_offline",
        "alephant-session-name=Tried offline",
        "alephant-session-path=/try",
        "Alephant-Agent-Id=helper",
        "Alephant-Run-Id=run_",
        "x-request-id=req_",
    ):
        assert header in lines[0]


def test_a_busy_port_is_hinted_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("emulator", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr == (
        f"alephant-otel: port {port} on 127.0.0.1 is in use: pass --port with another port, "
        "or --port 0 for any free one\n"
    )


def test_the_emulator_stops_on_ctrl_c_quietly() -> None:
    proc, url, usage = _start_emulator("--quiet")
    assert url.startswith("http://127.0.0.1:")
    assert usage.startswith(f"# the Alephant gateway emulator: export ALEPHANT_GATEWAY_URL={url} ALEPHANT_VIRTUAL_KEY=")
    proc.send_signal(2)  # SIGINT, as Ctrl-C
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert out == ""


# --- narrow terminals and pipes ----------------------------------------------------------------


def test_at_80_columns_the_list_keeps_status_and_says_what_it_hid(tmp_path: Path) -> None:
    # Generated ids (sess_ + 32 hex) take half of 80 columns.
    specs = [replace(make(), session_id=new_id("sess_")) for make in (support_session, headless_session)]
    path = write_trace_file(tmp_path / "t.jsonl", make_spans(specs))
    listed = _cli("sessions", "list", "--source", str(path), env=clean_env(COLUMNS="80"))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    header = next(line for line in lines if "session" in line and "cost" in line)
    assert "status" in header
    start = next(i for i, line in enumerate(lines) if line.startswith("not shown"))
    hidden = " ".join(line.strip() for line in lines[start:])
    assert hidden.startswith("not shown at 80 columns: ")
    for column in ("agents", "runs", "retries", "started"):
        assert column in hidden
    assert all(len(line) <= 80 for line in lines)


def test_a_folded_path_breaks_after_a_slash_not_mid_word(tmp_path: Path) -> None:
    spec = replace(support_session(), session_id="sess_path", path="/support/escalation/priority")
    path = write_trace_file(tmp_path / "t.jsonl", make_spans([spec]))
    vitals = _cli("sessions", "vitals", "--source", str(path), env=clean_env(COLUMNS="60"))
    assert vitals.returncode == 0, vitals.stderr
    lines = vitals.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.strip() == "cost by path") :]
    rows = [line.split("│")[1].strip() for line in table if line.startswith("│")]
    cells = [c for c in rows if c]
    assert len(cells) > 1, vitals.stdout  # folded: 60 columns cannot hold it on one line
    assert "".join(cells) == "/support/escalation/priority"
    # Each line but the last ends at a "/": whole path segments, never "/support/escalatio" + "n".
    assert all(c.endswith("/") for c in cells[:-1]), cells


def test_three_sessions_flag_no_latency_outlier(tmp_path: Path) -> None:
    # The slowest of three sessions always stood above "the p95 of all sessions": it is not an outlier.

    specs = [
        SessionSpec(
            f"sess_{i}",
            "/p",
            f"sess_{i}",
            i * 2000,
            1000,
            runs=[RunSpec(f"run_{i}", "agent", i * 2000, 900, requests=[Req(f"req_{i}", i * 2000, 60 + 4 * i)])],
        )
        for i in range(3)
    ]
    path = write_trace_file(tmp_path / "t.jsonl", make_spans(specs))
    doc = json.loads(_cli("sessions", "vitals", "--source", str(path), "--json").stdout)
    assert [f for s in doc["sessions"] for f in s["flags"] if f["kind"] == "high_latency"] == []
    assert doc["totals"]["latency_threshold_s"] is None


def test_a_summary_line_stays_whole_when_piped(tmp_path: Path) -> None:

    deep = tmp_path / ("a-long-directory-name-" * 8)
    deep.mkdir()
    path = write_trace_file(deep / "t.jsonl", make_spans([support_session()]))
    env = clean_env()
    env.pop("COLUMNS", None)
    vitals = _cli("sessions", "vitals", "--source", str(path), env=env)
    assert vitals.returncode == 0, vitals.stderr
    headline = vitals.stdout.splitlines()[0]
    assert len(headline) > 200
    assert "latency p50" in headline  # the whole line, not cut at 200 columns


def test_a_quick_read_shows_no_progress_bar_on_a_terminal(
    two_sessions: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    import pty

    path, _ = two_sessions
    out_r, out_w = os.pipe()
    err_master, err_slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "sessions", "list", "--source", str(path)],
        stdout=out_w,
        stderr=err_slave,
        env=clean_env(COLUMNS="200"),
    )
    os.close(out_w)
    os.close(err_slave)
    assert proc.wait(timeout=60) == 0
    with os.fdopen(out_r) as fh:
        assert "sess_paste_a" in fh.read()
    written = b""
    with contextlib.suppress(OSError):  # EIO once the child's end is closed
        while chunk := os.read(err_master, 4096):
            written += chunk
    os.close(err_master)
    assert b"reading spans" not in written
    assert written == b""


# --- a trace file that does not exist yet -------------------------------------------------------


def test_follow_waits_for_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "later" / "traces.otlp.jsonl"
    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "sessions", "list", "--follow", "--source", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(COLUMNS="200"),
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        said = proc.stderr.readline()
        assert said == f"alephant-otel: no trace file at {path}: waiting for it to appear (Ctrl-C stops)\n"
        assert proc.poll() is None  # still running, as tail -F does
        path.parent.mkdir()
        write_trace_file(path, make_spans([support_session()]))
        seen = ""
        while support_session().session_id not in seen:
            line = proc.stdout.readline()
            assert line, "the follower ended without showing the session"
            seen += line
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_the_web_view_waits_for_its_trace_file(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    from test_ui import UiProcess

    path = tmp_path / "traces.otlp.jsonl"
    ui = UiProcess("--source", str(path))
    try:
        with pytest.raises(urllib.error.HTTPError) as waiting:
            urllib.request.urlopen(ui.url, timeout=10)
        page = waiting.value.read().decode()
        waiting.value.close()
        assert waiting.value.code == 503
        assert "No trace file yet" in page
        assert f"no trace file at {path}" in page
        assert '<meta http-equiv="refresh" content="2">' in page
        assert "back to the session list" not in page  # it would lead to this same page
        write_trace_file(path, make_spans([support_session()]))
        with urllib.request.urlopen(ui.url, timeout=10) as resp:
            assert support_session().session_id in resp.read().decode()
    finally:
        ui.stop()


def test_a_busy_port_for_the_web_view_is_hinted_in_one_line(tmp_path: Path) -> None:
    path = write_trace_file(tmp_path / "t.jsonl", make_spans([support_session()]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("ui", "--source", str(path), "--port", str(port), "--no-browser")
    assert done.returncode == 1
    assert done.stderr == (
        f"alephant-otel: port {port} on 127.0.0.1 is in use: pass --port with another port, "
        "or --port 0 for any free one\n"
    )


def test_a_bare_ui_after_the_demo_points_at_the_demo_file(tmp_path: Path) -> None:
    import re
    import urllib.error
    import urllib.request

    demo = tmp_path / "alephant-otel" / "demo.otlp.jsonl"
    demo.parent.mkdir()
    write_trace_file(demo, make_spans([support_session()]))
    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "ui", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(XDG_DATA_HOME=str(tmp_path)),
    )
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", proc.stdout.readline())
        assert url is not None
        with pytest.raises(urllib.error.HTTPError) as waiting:
            urllib.request.urlopen(url.group(1), timeout=10)
        page = waiting.value.read().decode()
        waiting.value.close()
        assert f"the demo&#x27;s spans are in {demo}: --source {demo}" in page
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=15)
    # The warning at start says the same, in one line.
    assert f"--source {demo}" in err.splitlines()[0]


_FAILED_SCRIPT = """
import sys
import openai
from alephant_otel import configure, run, session
from alephant_otel.testing import Fault, GatewayEmulator

with GatewayEmulator() as gw:
    configure(gateway_url=gw.url, trace_file=sys.argv[1])
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-test", max_retries=0)
    gw.add_fault(Fault.status(503))
    with session("sess_failed"), run(agent_id="a"):
        try:
            client.embeddings.create(model="openai/text-embedding-3-small", input="x")
        except openai.APIStatusError:
            pass
"""


def test_why_a_request_failed_is_in_the_json_and_the_attribute_panel(tmp_path: Path) -> None:
    path = tmp_path / "t.otlp.jsonl"
    made = subprocess.run(
        [sys.executable, "-c", _FAILED_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    shown = json.loads(_cli("sessions", "show", "sess_failed", "--source", str(path), "--json").stdout)
    (request,) = shown["session"]["runs_tree"][0]["requests"]
    assert (request["error"], request["http_status"], request["error_type"]) == (True, 503, "503")
    page = tmp_path / "s.html"
    assert _cli("sessions", "show", "sess_failed", "--source", str(path), "--html", str(page)).returncode == 0
    assert '["error.type","503"]' in page.read_text().replace(" ", "")


def test_the_web_view_opens_the_session_of_a_pasted_run_or_request_id(
    two_sessions: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    import urllib.request

    from test_ui import UiProcess

    path, ids = two_sessions
    ui = UiProcess("--source", str(path))
    try:
        for pasted in (ids["sess_paste_b"]["inner"], _request_ids(path, "sess_paste_b")[0]):
            with urllib.request.urlopen(ui.url + "sessions/" + pasted, timeout=10) as resp:
                assert resp.status == 200
                assert "sess_paste_b" in resp.read().decode()
    finally:
        ui.stop()


def test_a_bare_command_prints_the_help() -> None:
    done = _cli()
    assert done.returncode == 2  # still a usage error for scripts
    assert "usage: alephant-otel" in done.stdout
    assert "emulator" in done.stdout and "sessions" in done.stdout


def test_a_breakdown_with_nothing_to_show_says_so(two_sessions: tuple[Path, dict[str, dict[str, str]]]) -> None:
    path, _ = two_sessions
    done = _cli("sessions", "vitals", "--by", "tool", "--source", str(path))
    assert done.returncode == 0, done.stderr
    assert "cost by tool: none in these sessions" in done.stdout
