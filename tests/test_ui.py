"""The web view (`alephant-otel ui`), the `--html` export and `sessions list --follow`.

A real server (the CLI as a subprocess, loopback, port 0) and a real headless
Chromium (Debian's `chromium`, driven by Playwright for Python). The browser
tests skip only when /usr/bin/chromium is absent; CI installs it.

With ALEPHANT_UPDATE_SCREENSHOTS=1 the browser also writes docs/ui-sessions.png
and docs/ui-waterfall.png; with ALEPHANT_REQUIRE_BROWSER=1 (CI) a missing
browser is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util import ROOT, clean_env, wait_for
from fixtures.analytics_data import Req, RunSpec, SessionSpec, make_spans, otlp_json, support_session, write_trace_file
from fixtures.ui_data import showcase_sessions
from test_analytics_backends import _Server, jaeger_route, tempo_route

from alephant_otel.analytics._render import money as _money

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_NAME = "<script>alert(1)</script>"
XSS_MODEL = "<script>alert(2)</script><img src=x onerror=alert(3)>"
CLI = [sys.executable, "-m", "alephant_otel.cli._main"]

# CI sets ALEPHANT_REQUIRE_BROWSER=1: there a missing browser fails the tests instead of skipping them.
REQUIRE_BROWSER = os.environ.get("ALEPHANT_REQUIRE_BROWSER") == "1"
browser_needed = pytest.mark.skipif(
    not CHROMIUM.exists() and not REQUIRE_BROWSER, reason="needs Debian's chromium at /usr/bin/chromium"
)


# --- helpers --------------------------------------------------------------------------


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=clean_env(), check=False)


def sessions_json(source: Path) -> list[dict[str, Any]]:
    out = cli("sessions", "list", "--source", str(source), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["sessions"]


def show_json(source: Path, session_id: str) -> dict[str, Any]:
    out = cli("sessions", "show", session_id, "--source", str(source), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["session"]


def all_requests(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = list(doc["requests"])

    def walk(runs: list[dict[str, Any]]) -> None:
        for run in runs:
            out.extend(run["requests"])
            walk(run["runs"])

    walk(doc["runs_tree"])
    return out


def append_spans(path: Path, sessions: list[SessionSpec]) -> None:
    line = json.dumps(otlp_json(make_spans(sessions, stray=False)), separators=(",", ":")) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)


class UiProcess:
    """`alephant-otel ui --port 0 --no-browser` in a subprocess, and the URL it printed."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "ui", "--port", "0", "--no-browser", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=cwd,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"no URL printed: {line!r}")
        self.url = match.group(1)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def http_get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read().decode()


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    out = cli("demo", "--trace-file", str(path), timeout=120)
    assert out.returncode == 0, out.stderr
    return path


@pytest.fixture(scope="module")
def demo_ui(demo_file: Path) -> Iterator[UiProcess]:
    ui = UiProcess("--source", str(demo_file))
    yield ui
    ui.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail("ALEPHANT_REQUIRE_BROWSER=1 but there is no /usr/bin/chromium (apt-get install chromium)")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def xss_session() -> SessionSpec:
    return SessionSpec(
        "sess_xss",
        "/x/<b>bold</b>",
        XSS_NAME,
        40_000,
        1_000,
        runs=[
            RunSpec(
                "run_x",
                "agent<script>alert(4)</script>",
                40_010,
                900,
                requests=[Req("req_x1", 40_020, 300, inp=5, out=5, cost=0.00001, model=XSS_MODEL)],
            )
        ],
    )


# --- the server over HTTP -------------------------------------------------------------


def test_pages_carry_a_strict_csp_and_no_inline_script(demo_ui: UiProcess, demo_file: Path) -> None:
    sid = sessions_json(demo_file)[0]["session_id"]
    for path in ("", f"sessions/{sid}"):
        status, headers, body = http_get(demo_ui.url + path)
        assert status == 200
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        # Every <script> is a file of the package or a JSON data block, never inline code.
        for tag in re.findall(r"<script[^>]*>", body):
            assert 'src="/static/' in tag or 'type="application/json"' in tag


def test_unknown_session_is_a_404_page_with_a_link_back(demo_ui: UiProcess) -> None:
    status, headers, body = http_get(demo_ui.url + "sessions/sess_nope")
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert "No session sess_nope" in body and 'href="/"' in body
    assert "Traceback" not in body


def test_session_pages_take_a_unique_prefix_and_list_an_ambiguous_one(demo_ui: UiProcess, demo_file: Path) -> None:
    ids = [s["session_id"] for s in sessions_json(demo_file)]
    first = ids[0]
    unique = next(first[:n] for n in range(1, len(first) + 1) if sum(i.startswith(first[:n]) for i in ids) == 1)
    status, _, body = http_get(demo_ui.url + f"sessions/{unique}")
    assert status == 200 and first in body
    shared = os.path.commonprefix(ids)  # noqa: RUF071 (ids, not paths: character by character)
    status, _, body = http_get(demo_ui.url + f"sessions/{shared}")
    assert status == 404
    assert f"matches {len(ids)} sessions" in body and all(i in body for i in ids)


def test_unreadable_source_is_a_page_saying_what_is_wrong(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.jsonl"
    ui = UiProcess("--source", str(missing))
    try:
        status, _, body = http_get(ui.url)
        assert status == 503
        assert "no trace file at" in body and str(missing) in body
        assert "Traceback" not in body
    finally:
        err = ui.stop()
    assert "Traceback" not in err
    assert ui.proc.returncode == 0


@pytest.mark.parametrize("kind", ["missing", "garbage", "unreachable"])
def test_an_unreadable_source_warns_as_sessions_list_says_it(kind: str, tmp_path: Path) -> None:
    """The ui serves anyway, and its one warning is the line `sessions list` exits 1 with."""
    source = {
        "missing": str(tmp_path / "nothing-here.jsonl"),
        "garbage": str(tmp_path / "garbage.bin"),
        "unreachable": "tempo+http://127.0.0.1:1",
    }[kind]
    (tmp_path / "garbage.bin").write_bytes(b"not a trace\n\x00\xff binary\n")
    listed = cli("sessions", "list", "--source", source)
    assert listed.returncode == 1 and listed.stderr.count("\n") == 1
    ui = UiProcess("--source", source)
    err = ui.stop()
    assert ui.proc.returncode == 0
    assert err.splitlines()[0] == listed.stderr.strip().replace("alephant-otel: ", "alephant-otel: warning: ", 1)


def test_a_source_in_no_known_form_is_a_usage_error() -> None:
    out = cli("ui", "--source", "http://127.0.0.1:1", "--port", "0", "--no-browser")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "tempo+http://127.0.0.1:1" in out.stderr
    assert out.stderr == cli("sessions", "list", "--source", "http://127.0.0.1:1").stderr


def test_refuses_a_non_loopback_host_without_the_flag() -> None:
    out = cli("ui", "--host", "0.0.0.0", "--port", "0", "--no-browser")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "--allow-remote" in out.stderr and "no authentication" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_zero_prints_the_url_it_bound(demo_ui: UiProcess) -> None:
    assert not demo_ui.url.endswith(":0/")
    assert http_get(demo_ui.url + "api/version")[0] == 200


# --- the browser --------------------------------------------------------------------


@browser_needed
def test_list_shows_every_session_and_a_click_opens_its_waterfall(
    demo_ui: UiProcess, demo_file: Path, page: Any
) -> None:
    expected = sessions_json(demo_file)
    page.goto(demo_ui.url)
    links = page.locator("table.sessions tbody td.id a")
    assert sorted(links.all_inner_texts()) == sorted(s["session_id"] for s in expected)
    assert page.locator("section.charts img").count() == 5

    target = max(expected, key=lambda s: s["request_count"])
    page.locator("table.sessions tbody td.id a", has_text=target["session_id"]).click()
    page.wait_for_selector("#waterfall")
    assert page.url.endswith(f"/sessions/{target['session_id']}")
    doc = show_json(demo_file, target["session_id"])
    requests = all_requests(doc)
    rows = page.locator(".wf-row.req")
    assert rows.count() == len(requests) == target["request_count"]
    text = page.locator("#waterfall").inner_text()
    for r in requests:
        row = page.locator(f'.wf-row.req[data-index] >> text="{r["request_id"]}"')
        assert row.count() == 1, r["request_id"]
        assert _money(r["cost_usd"]) in text
    for agent in doc["agents"]:
        assert agent in text
    head = page.locator(".session-head").inner_text()
    assert doc["path"] in head and _money(doc["cost_usd"]) in head and "agree" in head

    # A request opens to its attributes.
    first = requests[0]["request_id"]
    page.locator(".wf-row.req", has_text=first).click()
    detail = page.locator(".detail").first.inner_text()
    assert "alephant.request.id" in detail and first in detail
    assert page.errors == []


@browser_needed
def test_showcase_pages_draw_their_charts_and_waterfall(tmp_path: Path, page: Any) -> None:
    """A day of varied sessions; with ALEPHANT_UPDATE_SCREENSHOTS=1, the pictures in docs/."""
    specs = showcase_sessions()
    write_trace_file(tmp_path / "traces.otlp.jsonl", make_spans(specs), batch=16)
    # A relative source: the pictures in docs/ show "traces.otlp.jsonl", not a temporary directory.
    ui = UiProcess("--source", "traces.otlp.jsonl", "--limit", "12", cwd=tmp_path)
    update = os.environ.get("ALEPHANT_UPDATE_SCREENSHOTS") == "1"
    try:
        page.goto(ui.url + "?sort=started&order=asc")
        page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("table.sessions tbody tr").count() == 12
        assert f"of {len(specs)} sessions" in page.locator("#totals").inner_text()
        assert page.locator("ul.flagged li").count() >= 3
        page.locator("a[rel=next]").click()
        assert page.locator("table.sessions tbody tr").count() == 12
        if update:
            page.goto(ui.url)
            page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(ROOT / "docs" / "ui-sessions.png"), full_page=True)
        busy = specs[24]  # retried twice after rate limits, then intercepted
        page.goto(ui.url + "sessions/" + busy.session_id)
        page.wait_for_selector("#waterfall")
        assert page.locator(".badge.retry").count() == 2
        policy = page.locator(".badge.policy")
        assert policy.inner_text() == "intercepted (pii)"
        assert policy.get_attribute("title") == "PII detected in prompt"
        assert page.locator(".badge.stream").count() == sum(1 for q in busy.all_requests() if q.streaming)
        page.locator(".wf-row.req").nth(1).click()
        if update:
            page.screenshot(path=str(ROOT / "docs" / "ui-waterfall.png"), full_page=True)
        assert page.errors == []
    finally:
        ui.stop()


@browser_needed
def test_filters_and_sorting_narrow_the_list(demo_ui: UiProcess, demo_file: Path, page: Any) -> None:
    expected = sessions_json(demo_file)
    intercepted = [s["session_id"] for s in expected if s["status"] == "intercepted"]
    assert intercepted and len(intercepted) < len(expected)
    page.goto(demo_ui.url)
    page.select_option("select[name=status]", "intercepted")
    page.click("form.filters button")
    page.wait_for_url("**status=intercepted**")
    assert page.locator("table.sessions tbody td.id a").all_inner_texts() == intercepted

    path = expected[0]["path"]
    page.goto(demo_ui.url)
    page.fill("input[name=path]", path)
    page.click("form.filters button")
    page.wait_for_url("**path=**")
    assert page.locator("table.sessions tbody td.id a").all_inner_texts() == [
        s["session_id"] for s in expected if s["path"] == path
    ]

    page.goto(demo_ui.url + "?min_cost=1000")
    assert page.locator("table.sessions tbody tr").count() == 0
    assert page.locator("#empty").is_visible()

    page.goto(demo_ui.url)
    page.locator("th a", has_text="cost").click()
    page.wait_for_url("**sort=cost**")
    by_cost = [s["session_id"] for s in sorted(expected, key=lambda s: (s["cost_usd"], s["session_id"]), reverse=True)]
    assert page.locator("table.sessions tbody td.id a").all_inner_texts() == by_cost


@browser_needed
def test_script_in_a_session_name_and_a_model_name_is_inert(tmp_path: Path, page: Any) -> None:
    source = write_trace_file(tmp_path / "xss.jsonl", make_spans([xss_session()]))
    ui = UiProcess("--source", str(source))
    try:
        page.goto(ui.url)
        assert page.locator("td.id .name").inner_text() == XSS_NAME
        page.locator("td.id a").click()
        page.wait_for_selector("#waterfall")
        assert page.locator(".session-head h1").inner_text() == XSS_NAME
        assert page.locator(".wf-row.req .model").inner_text() == XSS_MODEL
        page.locator(".wf-row.req").click()
        assert XSS_MODEL in page.locator(".detail").inner_text()
        assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
        assert page.locator("img[src=x]").count() == 0
        html_file = tmp_path / "xss.html"
        out = cli("sessions", "show", "sess_xss", "--source", str(source), "--html", str(html_file))
        assert out.returncode == 0, out.stderr
        page.goto(html_file.as_uri())
        page.wait_for_selector("#waterfall")
        assert page.locator(".session-head h1").inner_text() == XSS_NAME
        assert page.locator(".wf-row.req .model").inner_text() == XSS_MODEL
        page.wait_for_timeout(200)
        assert page.dialogs == []
        assert page.errors == []
    finally:
        ui.stop()


@browser_needed
def test_live_pages_pick_up_spans_written_after_they_loaded(tmp_path: Path, page: Any) -> None:
    source = write_trace_file(tmp_path / "live.jsonl", make_spans([support_session()]))
    ui = UiProcess("--source", str(source))
    try:
        page.goto(ui.url)
        page.evaluate("window.sameDocument = true")
        assert page.locator("table.sessions tbody tr").count() == 1
        append_spans(source, [xss_session()])
        page.wait_for_selector("td.id a >> text=sess_xss", timeout=10_000)
        assert page.evaluate("window.sameDocument") is True  # no reload
        assert page.locator("table.sessions tbody tr").count() == 2
        assert "2 of 2 sessions" in page.locator("#totals").inner_text()

        # A session page grows: a new request in the session appears.
        page.goto(ui.url + "sessions/sess_xss")
        page.evaluate("window.sameDocument = true")
        assert page.locator(".wf-row.req").count() == 1
        more = xss_session()
        more.emit_span = False
        more.runs[0].emit_span = False
        more.runs[0].requests = [Req("req_x2", 40_500, 200, inp=7, out=3, cost=0.00002)]
        append_spans(source, [more])
        page.wait_for_selector(".wf-row.req >> text=req_x2", timeout=10_000)
        assert page.evaluate("window.sameDocument") is True
        assert page.locator(".wf-row.req").count() == 2
    finally:
        ui.stop()


@browser_needed
def test_html_export_renders_the_same_waterfall_offline(demo_file: Path, browser: Any, tmp_path: Path) -> None:
    sid = max(sessions_json(demo_file), key=lambda s: s["request_count"])["session_id"]
    html_file = tmp_path / "session.html"
    out = cli("sessions", "show", sid, "--source", str(demo_file), "--html", str(html_file))
    assert out.returncode == 0, out.stderr
    text = html_file.read_text()
    assert "/static/" not in text and "http://" not in text.split("</head>")[0]

    context = browser.new_context(offline=True)
    asked: list[str] = []
    context.on("request", lambda r: asked.append(r.url))
    context.route("http*://**", lambda route: route.abort())
    try:
        pg = context.new_page()
        pg.goto(html_file.as_uri())
        pg.wait_for_selector("#waterfall")
        requests = all_requests(show_json(demo_file, sid))
        wf = pg.locator("#waterfall").inner_text()
        assert pg.locator(".wf-row.req").count() == len(requests)
        for r in requests:
            assert r["request_id"] in wf and _money(r["cost_usd"]) in wf
        pg.locator(".wf-row.req").first.click()
        assert "alephant.request.id" in pg.locator(".detail").inner_text()
        assert asked == [html_file.as_uri()]
    finally:
        context.close()


# --- sessions list --follow -------------------------------------------------------------


def test_sessions_list_follow_shows_a_session_appended_to_the_file(tmp_path: Path) -> None:
    source = write_trace_file(tmp_path / "follow.jsonl", make_spans([support_session()]))
    proc = subprocess.Popen(
        [*CLI, "sessions", "list", "--follow", "--source", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(COLUMNS="200"),
    )
    seen: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any("sess_a" in line for line in seen), timeout=20)
        assert not any("sess_xss" in line for line in seen)
        append_spans(source, [xss_session()])
        assert wait_for(lambda: any("sess_xss" in line for line in seen), timeout=20)
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


def test_follow_refuses_a_backend_and_json(tmp_path: Path) -> None:
    out = cli("sessions", "list", "--follow", "--json", "--source", str(tmp_path / "x.jsonl"))
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    out = cli("sessions", "list", "--follow", "--source", "tempo+http://127.0.0.1:1")
    assert out.returncode == 1 and "not" in out.stderr and out.stderr.count("\n") == 1


def test_static_files_are_in_the_package() -> None:
    from alephant_otel.web._pages import STATIC, static_file

    for name in STATIC:
        assert static_file(name)
    time.sleep(0)


# --- trace links into Tempo and Jaeger --------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "route", "link"),
    [("tempo", tempo_route, "{base}/api/traces/{trace}"), ("jaeger", jaeger_route, "{base}/trace/{trace}")],
)
def test_a_request_links_to_its_trace_in_tempo_or_jaeger(scheme: str, route: Any, link: str) -> None:
    backend = _Server(route)
    ui = UiProcess("--source", f"{scheme}+{backend.url}")
    try:
        status, _, body = http_get(ui.url + "api/sessions/sess_a")
        assert status == 200
        requests = [r for r in json.loads(body)["rows"] if r["kind"] == "request"]
        assert len(requests) == 5
        for r in requests:
            trace = dict(r["attrs"])["trace_id"]
            assert r["trace_url"] == link.format(base=backend.url, trace=trace)
    finally:
        ui.stop()
        backend.close()


@browser_needed
def test_the_trace_link_opens_from_the_request_attributes(page: Any) -> None:
    backend = _Server(jaeger_route)
    ui = UiProcess("--source", f"jaeger+{backend.url}")
    try:
        page.goto(ui.url + "sessions/sess_a")
        page.locator(".wf-row.req").first.click()
        href = page.locator(".detail a").get_attribute("href")
        assert href is not None and href.startswith(f"{backend.url}/trace/")
    finally:
        ui.stop()
        backend.close()


def test_a_request_for_another_host_name_is_refused(demo_ui: UiProcess) -> None:
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1 must not read the sessions."""
    port = demo_ui.url.rsplit(":", 1)[1].strip("/")
    request = urllib.request.Request(demo_ui.url + "api/list", headers={"Host": f"evil.example:{port}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read().decode()
    assert status == 421
    assert "sess_" not in body
    assert http_get(demo_ui.url.replace("127.0.0.1", "localhost") + "api/version")[0] == 200


def test_bad_filter_values_are_said_on_the_page(demo_ui: UiProcess, demo_file: Path) -> None:
    status, _, body = http_get(demo_ui.url + "?min_cost=lots&since=yesterday-ish&page=x&sort=colour&status=odd")
    assert status == 200
    for problem in ("bad min cost", "bad time", "bad page", "unknown sort", "unknown status"):
        assert problem in body
    # The bad values are ignored: every session is listed.
    assert all(s["session_id"] in body for s in sessions_json(demo_file))
    assert "Traceback" not in body


def test_is_loopback() -> None:
    from alephant_otel.web._commands import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.com", ""))


def test_opens_the_browser_unless_told_not_to(demo_file: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    fake = tmp_path / "browser.py"
    fake.write_text(f"import sys, pathlib\npathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n")
    env = clean_env(BROWSER=f"{sys.executable} {fake} %s", DISPLAY=":99")
    proc = subprocess.Popen(
        [*CLI, "ui", "--port", "0", "--source", str(demo_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", proc.stdout.readline())
        assert url is not None
        assert wait_for(lambda: opened.exists() and opened.read_text() == url.group(1))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_the_follower_reads_appended_lines_once_and_waits_for_a_partial_one(tmp_path: Path) -> None:
    from alephant_otel.analytics import read_sessions
    from alephant_otel.analytics._follow import TraceFollower

    whole = write_trace_file(tmp_path / "whole.jsonl", make_spans(showcase_sessions(8)), batch=5)
    data = whole.read_bytes()
    growing = tmp_path / "growing.jsonl"
    follower = TraceFollower(growing)
    cut = data.index(b"\n", len(data) // 2) + 40  # mid-line: a writer half-way through a batch
    growing.write_bytes(data[:cut])
    first = follower.poll()
    assert first.corrupt == 0
    with growing.open("ab") as fh:
        fh.write(data[cut:])
    last = follower.poll()
    expected = read_sessions(whole)
    assert last.spans == expected.spans > first.spans
    assert [(s.session_id, s.request_count, s.cost_usd) for s in last.sessions] == [
        (s.session_id, s.request_count, s.cost_usd) for s in expected.sessions
    ]
    assert follower.poll().sessions == last.sessions  # unchanged file: nothing read again
    growing.write_bytes(data[: data.index(b"\n") + 1])  # replaced by a shorter file: read anew
    assert follower.poll().spans < first.spans
