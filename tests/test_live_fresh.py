"""The live views stay true to the trace file, and the server holds up under load.

The web view (`alephant-otel ui` as a subprocess, real HTTP on loopback), the
reader behind it and `sessions list --follow` (the CLI as a subprocess):

- while a file grows by 40 appends, every read answers with exactly what the
  file holds at that moment (compared with a fresh full read of the file);
- a file rewritten in place (same size or larger, same inode) is read anew;
- 2,000 requests from 200 concurrent clients are all answered;
- a client resetting its connection mid-answer leaves no traceback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _util import clean_env, wait_for
from fixtures.analytics_data import Req, RunSpec, SessionSpec, make_spans, write_trace_file
from test_ui import CLI, UiProcess, append_spans

from alephant_otel.analytics import Session, read_sessions
from alephant_otel.analytics._follow import TraceFollower
from alephant_otel.web._pages import totals_text
from alephant_otel.web._view import list_row

#: The list-row fields that follow from the file's content (not from the clock or the time zone).
FIELDS = ("session_id", "path", "status", "runs", "requests", "retries", "tokens", "cost")


def new_session(i: int) -> SessionSpec:
    """Session ``i``: one run, one request; its numbers differ from every other session's."""
    start = i * 1_000
    return SessionSpec(
        f"sess_{i:03d}",
        f"/live/s{i}",
        f"step {i}",
        start,
        900,
        runs=[
            RunSpec(
                f"run_{i:03d}",
                "agent",
                start + 10,
                800,
                requests=[Req(f"req_{i:03d}_0", start + 20, 100, inp=10 + i, out=5 + i, cost=0.00001 * (i + 1))],
            )
        ],
    )


def more_requests(i: int, n: int) -> SessionSpec:
    """Request ``n`` of session ``i``, written later: only the request span (its ids join it up)."""
    spec = new_session(i)
    spec.emit_span = False
    run = spec.runs[0]
    run.emit_span = False
    run.requests = [Req(f"req_{i:03d}_{n}", run.start_ms + 20 + n, 10, inp=7 * n, out=3 * n, cost=0.000013 * n)]
    return spec


def expected_rows(path: Path) -> tuple[list[Session], dict[str, dict[str, Any]]]:
    """A fresh full read of the file: the truth each live read is compared with."""
    sessions = read_sessions(path).sessions
    return sessions, {s.session_id: {k: list_row(s)[k] for k in FIELDS} for s in sessions}


def rows_of(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["session_id"]: {k: r[k] for k in FIELDS} for r in rows}


def steps(count: int) -> list[tuple[int, SessionSpec]]:
    """``count`` appends: a new session, then alternately a request to an earlier one and a new one."""
    out: list[tuple[int, SessionSpec]] = []
    grown: dict[int, int] = {}
    made = 0
    for step in range(count):
        if step % 2 == 0:
            made += 1
            out.append((made, new_session(made)))
        else:
            target = 1 + (step * 7) % made  # spread over the sessions made so far
            grown[target] = grown.get(target, 0) + 1
            out.append((target, more_requests(target, grown[target])))
    return out


# --- the live list under 40 appends -------------------------------------------------------


def test_the_live_list_is_never_stale_while_the_file_grows(tmp_path: Path) -> None:
    source = write_trace_file(tmp_path / "grow.jsonl", make_spans([new_session(0)], stray=False))
    follower = TraceFollower(source)  # the reader of `sessions list --follow`, in this process
    ui = UiProcess("--source", str(source), "--limit", "500")
    stale: list[str] = []
    versions: list[str] = []
    try:
        with httpx.Client(base_url=ui.url, timeout=10) as client:
            for step, (sid_n, spec) in enumerate(steps(40)):
                append_spans(source, [spec])
                sessions, want = expected_rows(source)
                sid = f"sess_{sid_n:03d}"

                doc = client.get("/api/list", params={"size": "500"}).json()
                if rows_of(doc["rows"]) != want:
                    stale.append(f"step {step}: /api/list")
                if doc["totals"] != totals_text(sessions, len(sessions)):
                    stale.append(f"step {step}: /api/list totals")
                page = client.get("/", params={"size": "500"}).text
                if totals_text(sessions, len(sessions)) not in page.replace("&#x27;", "'"):
                    stale.append(f"step {step}: / totals")
                one = client.get(f"/api/sessions/{sid}").json()["session"]
                if (one["requests"], one["cost"]) != (want[sid]["requests"], want[sid]["cost"]):
                    stale.append(f"step {step}: /api/sessions/{sid}")
                version = client.get("/api/version").json()["version"]
                if version in versions or version != doc["version"]:
                    stale.append(f"step {step}: version {version} after {versions[-3:]}")
                versions.append(version)

                if rows_of([list_row(s) for s in follower.poll().sessions]) != want:
                    stale.append(f"step {step}: TraceFollower.poll")
    finally:
        err = ui.stop()
    assert stale == [], stale
    assert "Traceback" not in err


def test_the_version_moves_when_a_session_turns_completed_with_the_file_unchanged(tmp_path: Path) -> None:
    # No session span: the session is active while its last activity is within the window. The
    # window is set to end a few seconds from now, so the clock alone completes it.
    spec = new_session(1)
    spec.emit_span = False
    source = write_trace_file(tmp_path / "quiet.jsonl", make_spans([spec], stray=False))
    last = read_sessions(source).sessions[0].last_activity_ns
    window = (time.time_ns() - last) / 1e9 + 3.0
    ui = UiProcess("--source", str(source), "--active-window", f"{window:.3f}")
    try:
        with httpx.Client(base_url=ui.url, timeout=10) as client:

            def status() -> tuple[str, str]:
                doc = client.get("/api/list").json()
                return doc["rows"][0]["status"], client.get("/api/version").json()["version"]

            first, v0 = status()
            assert first == "active"
            later = wait_for(lambda: (s := status())[0] == "completed" and s, timeout=15)
            assert later, "the session never turned completed"
            # A live page polls /api/version: an unchanged tag would leave it showing "active".
            assert later[1] != v0
    finally:
        err = ui.stop()
    assert "Traceback" not in err


# --- in-place rewrites --------------------------------------------------------------------


def _rewrite_in_place(path: Path, data: bytes, *, keep_mtime: bool = False) -> None:
    """Write ``data`` over ``path`` from its first byte: same inode, as an editor saving in place."""
    before = path.stat()
    with path.open("r+b") as fh:
        fh.write(data)
        fh.truncate()
    if keep_mtime:
        # Two writes within one tick of the file system's clock leave the same mtime.
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_ino == before.st_ino


def _same_size_other_content(data: bytes) -> bytes:
    # Another session: ids, run, request, all renamed to names of the same length.
    out = data.replace(b"sess_001", b"sess_901").replace(b"run_001", b"run_901").replace(b"req_001", b"req_901")
    assert out != data and len(out) == len(data)
    return out


def _file_of(path: Path, specs: list[SessionSpec]) -> bytes:
    return write_trace_file(path, make_spans(specs, stray=False)).read_bytes()


@pytest.mark.parametrize("how", ["same-size", "same-size-same-mtime", "larger", "cp-over", "larger-same-head"])
def test_a_file_rewritten_in_place_is_read_as_new_content(tmp_path: Path, how: str) -> None:
    source = tmp_path / "trace.jsonl"
    first = _file_of(tmp_path / "a.jsonl", [new_session(1), new_session(2)])
    source.write_bytes(first)
    follower = TraceFollower(source)
    ui = UiProcess("--source", str(source))
    try:
        with httpx.Client(base_url=ui.url, timeout=10) as client:
            assert set(rows_of(client.get("/api/list").json()["rows"])) == {"sess_001", "sess_002"}
            v0 = client.get("/api/version").json()["version"]
            assert {s.session_id for s in follower.poll().sessions} == {"sess_001", "sess_002"}

            if how.startswith("same-size"):
                _rewrite_in_place(source, _same_size_other_content(first), keep_mtime=how.endswith("mtime"))
            elif how == "larger":
                _rewrite_in_place(
                    source, _file_of(tmp_path / "b.jsonl", [new_session(5), new_session(6), new_session(9)])
                )
            elif how == "larger-same-head":
                # The first line stays; what follows is rewritten and grows: the end of what was read differs.
                lines = first.splitlines(keepends=True)
                tail = _file_of(tmp_path / "c.jsonl", [new_session(7), new_session(8)])
                _rewrite_in_place(source, lines[0] + tail)
            else:
                other = tmp_path / "d.jsonl"
                _file_of(other, [new_session(3), new_session(4), new_session(10)])
                shutil.copyfile(other, source)  # opens the target with O_TRUNC: the same inode
            assert source.stat().st_size >= len(first)

            _, want = expected_rows(source)
            assert set(want) != {"sess_001", "sess_002"}
            assert rows_of([list_row(s) for s in follower.poll().sessions]) == want
            assert rows_of(client.get("/api/list").json()["rows"]) == want
            assert client.get("/api/version").json()["version"] != v0
    finally:
        err = ui.stop()
    assert "Traceback" not in err


# --- sessions list --follow ---------------------------------------------------------------


def _tables(text: str) -> list[dict[str, str]]:
    """The tables `sessions list --follow` printed (piped): session id -> requests cell, per table."""
    tables: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("sessions in "):
            tables.append({})
            header = None
            continue
        if not tables or ("│" not in line and "┃" not in line):
            continue
        cells = [c.strip() for c in line.strip().strip("│┃").replace("┃", "│").split("│")]
        if header is None:
            header = cells
            continue
        if cells and cells[0].startswith("sess_"):
            tables[-1][cells[0]] = cells[header.index("requests")]
    return tables


def test_sessions_list_follow_shows_each_append_and_a_rewrite(tmp_path: Path) -> None:
    source = write_trace_file(tmp_path / "follow.jsonl", make_spans([new_session(0)], stray=False))
    proc = subprocess.Popen(
        [*CLI, "sessions", "list", "--follow", "--source", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(COLUMNS="200"),
    )
    out: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def shows(want: dict[str, dict[str, Any]]) -> bool:
        tables = _tables("".join(out))
        return bool(tables) and tables[-1] == {sid: str(row["requests"]) for sid, row in want.items()}

    try:
        for _, spec in steps(6):
            append_spans(source, [spec])
            _, want = expected_rows(source)
            assert wait_for(lambda want=want: shows(want), timeout=10), (want, _tables("".join(out))[-1:])
        # Rewritten in place to the same size, a session in the middle renamed: the table follows.
        _rewrite_in_place(source, _same_size_other_content(source.read_bytes()))
        _, want = expected_rows(source)
        assert "sess_901" in want
        assert wait_for(lambda: shows(want), timeout=10), (want, _tables("".join(out))[-1:])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        reader.join(timeout=5)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


# --- load and resets ----------------------------------------------------------------------


@pytest.fixture
def busy_file(tmp_path: Path) -> Path:
    return write_trace_file(tmp_path / "busy.jsonl", make_spans([new_session(i) for i in range(60)], stray=False))


def test_2000_requests_from_200_concurrent_clients_are_all_answered(busy_file: Path) -> None:
    ui = UiProcess("--source", str(busy_file))
    paths = ["/api/version", "/api/list", "/", "/static/common.js", "/api/sessions/sess_001"]

    async def run() -> list[int | str]:
        # A new connection for every request: each is a client knocking at the listener.
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=ui.url, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(200)

            async def one(i: int) -> int | str:
                async with gate:
                    try:
                        return (await client.get(paths[i % len(paths)])).status_code
                    except httpx.HTTPError as exc:
                        return type(exc).__name__

            return await asyncio.gather(*(one(i) for i in range(2_000)))

    try:
        started = time.monotonic()
        statuses = asyncio.run(asyncio.wait_for(run(), timeout=120))
        elapsed = time.monotonic() - started
    finally:
        err = ui.stop()
    failed = [s for s in statuses if s != 200]
    assert failed == [], f"{len(failed)} of 2000 failed: {sorted(set(map(str, failed)))}"
    assert elapsed < 120
    assert "Traceback" not in err


def _reset(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN, a "connection reset by peer".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_reset_mid_answer_prints_no_traceback(busy_file: Path) -> None:
    ui = UiProcess("--source", str(busy_file))
    host, port = ui.url.split("//")[1].rstrip("/").split(":")
    request = f"GET /api/list?size=500 HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    try:
        for i in range(30):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # the answer cannot all fit
            if i % 3 == 0:
                sock.sendall(request[:20])  # reset while the server reads the request
            else:
                sock.sendall(request)
                if i % 3 == 2:
                    sock.recv(100)  # reset mid-answer, after its first bytes
            _reset(sock)
        time.sleep(0.5)
        # The server still answers.
        with httpx.Client(base_url=ui.url, timeout=10) as client:
            assert client.get("/api/list").status_code == 200
    finally:
        err = ui.stop()
    assert "Traceback" not in err, err
    assert "Exception" not in err, err
