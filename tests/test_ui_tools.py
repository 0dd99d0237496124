"""Tool steps in the web waterfall (headless Chromium) and the list's user filter (real ``ui`` process)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util import clean_env, wait_for
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


# --- the cost breakdown: the groupings of `sessions vitals --by`, and the user filter ------------------------

APPENDER = """
import sys, openai, alephant_otel as a
from alephant_otel.testing import GatewayEmulator
with GatewayEmulator() as gw:
    a.configure(gateway_url=gw.url, trace_file=sys.argv[1])
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-x", max_retries=0)
    with a.session("sess_9", user_id="u3", metadata={"plan": "team"}), a.run(agent_id="triage"):
        c.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        with a.tool("search", cost_usd=4.0):
            pass
"""
LOADED = "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
GROUP_ROWS = (
    "() => Array.from(document.querySelectorAll('#group-rows tr'))"
    ".map(tr => Array.from(tr.cells).map(td => td.textContent))"
)


def vitals_by(trace_file: Path, by: str) -> list[dict[str, Any]]:
    out = cli("sessions", "vitals", "--by", by, "--source", str(trace_file), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["by"]["groups"]


@browser_needed
def test_the_list_offers_every_grouping_of_vitals_by(trace_file: Path, browser: Any) -> None:
    ui = UiProcess("--source", str(trace_file))
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(ui.url)
        links = pg.locator("nav.by a")
        assert links.all_inner_texts() == ["agent", "path", "user", "tool", "model", "metadata.plan"]
        assert pg.locator("nav.by a.on").inner_text() == "agent"  # the default, as `vitals` prints first
        for by in ("agent", "path", "user", "tool", "model", "metadata.plan"):
            pg.locator("nav.by a", has_text=by).click()
            pg.wait_for_selector(f"nav.by a.on:text-is('{by}')")
            assert pg.locator("h2", has_text="Cost by").inner_text() == f"Cost by {by}"
            rows = pg.evaluate(GROUP_ROWS)
            want = vitals_by(trace_file, by)
            assert [r[0] for r in rows] == [g["key"] for g in want], by
            assert [r[4] for r in rows] == [money(g["cost_usd"]) for g in want], by
            assert [int(r[2]) for r in rows] == [g["request_count"] for g in want], by
            assert wait_for(lambda: pg.evaluate(LOADED)), by
            src = pg.locator("img[data-chart='cost-by']").get_attribute("src")
            status, headers, svg = http_get(ui.url + src.lstrip("/").replace("&amp;", "&"))
            assert status == 200 and headers["Content-Type"] == "image/svg+xml"
            assert f"Cost by {by} over time" in svg
            for g in want[:6]:
                assert f">{g['key']}<" in svg or f">{g['key']}: " in svg, (by, g["key"])
        # The tool breakdown counts calls, the failed crm call free and present.
        pg.locator("nav.by a", has_text="tool").click()
        pg.wait_for_selector("nav.by a.on:text-is('tool')")
        assert "CALLS" in pg.locator("table.groups th").nth(2).inner_text().upper()
        assert {r[0]: r[2] for r in pg.evaluate(GROUP_ROWS)} == {"search": "3", "crm": "3"}
    finally:
        context.close()
        ui.stop()


@browser_needed
def test_the_user_filter_and_a_user_group_narrow_the_list(trace_file: Path, browser: Any) -> None:
    ui = UiProcess("--source", str(trace_file))
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(ui.url + "?by=metadata.plan")
        pg.fill("input[name=user]", "u1")
        pg.click("form.filters button[type=submit]")
        pg.wait_for_url(re.compile(r"user=u1"))
        shown = {a.split()[0] for a in pg.locator("#rows td.id").all_inner_texts()}
        assert shown == {"sess_0", "sess_2"}
        # The filter keeps the grouping, and the breakdown covers the filtered sessions only.
        assert pg.locator("nav.by a.on").inner_text() == "metadata.plan"
        rows = pg.evaluate(GROUP_ROWS)
        assert [r[0] for r in rows] == ["pro"] and rows[0][1] == "2"
        # A user's row in the user breakdown links to the list filtered to that user.
        pg.goto(ui.url + "?by=user")
        pg.locator("#group-rows a", has_text="u2").click()
        pg.wait_for_url(re.compile(r"user=u2"))
        assert [a.split()[0] for a in pg.locator("#rows td.id").all_inner_texts()] == ["sess_1"]
        assert pg.input_value("input[name=user]") == "u2"
    finally:
        context.close()
        ui.stop()


@browser_needed
def test_the_breakdown_follows_a_growing_trace_file(trace_file: Path, browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_bytes(trace_file.read_bytes())
    ui = UiProcess("--source", str(path))
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(ui.url + "?by=user")
        assert [r[0] for r in pg.evaluate(GROUP_ROWS)] == ["u1", "u2"]
        subprocess.run([sys.executable, "-c", APPENDER, str(path)], env=clean_env(), check=True, timeout=120)
        # Polled from here: the page's CSP refuses wait_for_function's string evaluation.
        rows = wait_for(lambda: [r for r in pg.evaluate(GROUP_ROWS) if r[0] == "u3"], timeout=20)
        assert rows, pg.evaluate(GROUP_ROWS)
        assert [r[0] for r in pg.evaluate(GROUP_ROWS)] == [g["key"] for g in vitals_by(path, "user")]
        assert pg.locator("#group-rows a", has_text="u3").get_attribute("href").startswith("/?user=u3")
    finally:
        context.close()
        ui.stop()


def test_an_unknown_grouping_is_said_and_the_agent_one_shown(trace_file: Path) -> None:
    ui = UiProcess("--source", str(trace_file))
    try:
        status, _, body = http_get(ui.url + "?by=colour")
        assert status == 200
        assert "unknown breakdown &#x27;colour&#x27;" in body
        assert "<h2>Cost by agent</h2>" in body
        status, _, svg = http_get(ui.url + "charts/cost-by.svg?by=metadata.plan")
        assert status == 200 and "Cost by metadata.plan over time" in svg and ">free<" in svg
    finally:
        ui.stop()
