"""Tool steps in the web waterfall (headless Chromium) and the list's user filter (real ``ui`` process)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util import clean_env
from test_cli_tools import WRITER
from test_ui import CHROMIUM, CHROMIUM_ARGS, UiProcess, browser_needed, cli, http_get, show_json

from alephant_otel.analytics._render import money


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui-tools") / "trace.jsonl"
    subprocess.run([sys.executable, "-c", WRITER, str(path)], env=clean_env(), check=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@browser_needed
def test_the_waterfall_draws_tool_steps_in_their_own_colour_with_their_cost(
    trace_file: Path, browser: Any, tmp_path: Path
) -> None:
    html_file = tmp_path / "session.html"
    out = cli("sessions", "show", "sess_1", "--source", str(trace_file), "--html", str(html_file))
    assert out.returncode == 0, out.stderr
    doc = show_json(trace_file, "sess_1")
    context = browser.new_context(offline=True)
    try:
        pg = context.new_page()
        pg.goto(html_file.as_uri())
        pg.wait_for_selector("#waterfall")
        tools = pg.locator(".wf-row.tool")
        assert tools.count() == 2
        search, crm = tools.nth(0), tools.nth(1)
        assert "tool search" in search.inner_text() and "call_1" in search.inner_text()
        assert money(1.0) in search.inner_text()
        colour = search.locator(".bar").evaluate("b => getComputedStyle(b).backgroundColor")
        request_colour = pg.locator(".wf-row.req .bar").first.evaluate("b => getComputedStyle(b).backgroundColor")
        assert colour == "rgb(12, 166, 120)" != request_colour
        assert "error" in crm.locator(".bar").get_attribute("class")
        head = pg.locator(".session-head").inner_text()
        assert "u2" in head and "free" in head and money(doc["cost_usd"]) in head
    finally:
        context.close()


def test_the_list_filters_by_user(trace_file: Path) -> None:
    ui = UiProcess("--source", str(trace_file))
    try:
        status, _, body = http_get(ui.url + "?user=u1")
        assert status == 200
        shown = set(re.findall(r"sess_\d", body))
        assert shown == {"sess_0", "sess_2"}
        assert 'name="user" value="u1"' in body
    finally:
        ui.stop()
