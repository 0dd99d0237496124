"""The web view as it lays out in a real headless Chromium: what stays in view, what is said, what is drawn.

Measured by element geometry in the page, at the window sizes users have.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _util import wait_for
from fixtures.analytics_data import (
    Req,
    RunSpec,
    SessionSpec,
    headless_session,
    linked_session,
    make_spans,
    support_session,
    write_trace_file,
)
from test_ui import UiProcess, append_spans, browser, browser_needed, page  # noqa: F401 (fixtures used by name)

from alephant_otel.context._ids import new_id

_GEOMETRY = """() => {
  const wrap = document.querySelector('div.table-wrap').getBoundingClientRect();
  const rows = Array.from(document.querySelectorAll('table.sessions tbody tr'));
  const cell = (tr, i) => tr.children[i].getBoundingClientRect();
  const heads = Array.from(document.querySelectorAll('table.sessions thead th')).map(th => th.innerText.trim());
  const statusAt = heads.findIndex(h => h.toLowerCase().startsWith('status'));
  return {
    left: wrap.left, right: wrap.right,
    cost: rows.map(tr => [cell(tr, tr.children.length - 1).left, cell(tr, tr.children.length - 1).right]),
    status: rows.map(tr => [cell(tr, statusAt).left, cell(tr, statusAt).right]),
    ids: rows.map(tr => [tr.querySelector('td.id a').textContent, tr.querySelector('td.id a').title,
                         tr.querySelector('td.id a').getAttribute('href')]),
  };
}"""


@pytest.fixture(scope="module")
def generated_ids(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Sessions with the ids the package generates (``sess_`` + 32 hex) and long agent lists."""
    specs = [
        replace(make(), session_id=new_id("sess_"))
        for make in (support_session, headless_session, linked_session, support_session)
    ]
    path = write_trace_file(tmp_path_factory.mktemp("ids") / "traces.otlp.jsonl", make_spans(specs))
    return path, [s.session_id for s in specs]


@browser_needed
@pytest.mark.parametrize("width", [1280, 1600, 2560])
def test_cost_and_status_are_in_view_with_generated_ids(
    generated_ids: tuple[Path, list[str]],
    browser: Any,  # noqa: F811
    width: int,
) -> None:
    path, ids = generated_ids
    ui = UiProcess("--source", str(path))
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        pg = context.new_page()
        pg.goto(ui.url)
        g = pg.evaluate(_GEOMETRY)
        assert len(g["cost"]) == len(ids)
        for left, right in g["cost"] + g["status"]:
            assert g["left"] <= left and right <= g["right"] + 0.5, (width, g)
        # Shortened on screen only: the text a copy takes, the tooltip and the link hold the whole id.
        assert sorted(text for text, _, _ in g["ids"]) == sorted(ids)
        assert all(text == title and href == "/sessions/" + text for text, title, href in g["ids"])
    finally:
        context.close()
        ui.stop()


@browser_needed
def test_on_a_narrow_window_the_cost_stays_pinned_in_view(
    generated_ids: tuple[Path, list[str]],
    browser: Any,  # noqa: F811
) -> None:
    path, _ = generated_ids
    ui = UiProcess("--source", str(path))
    context = browser.new_context(viewport={"width": 900, "height": 900})
    try:
        pg = context.new_page()
        pg.goto(ui.url)
        g = pg.evaluate(_GEOMETRY)
        for left, right in g["cost"]:
            assert g["left"] <= left and right <= g["right"] + 0.5, g
    finally:
        context.close()
        ui.stop()


def _session(sid: str, start_ms: int, lat_ms: int) -> SessionSpec:
    req = Req(f"req_{sid}", start_ms + 5, lat_ms, inp=10, out=10, cost=0.0000081)
    return SessionSpec(sid, "/p", sid, start_ms, 400, runs=[RunSpec(f"run_{sid}", "a", start_ms + 1, 300, [req])])


@browser_needed
def test_charts_appear_from_three_sessions_and_fill_their_cards(tmp_path: Path, page: Any) -> None:  # noqa: F811
    path = tmp_path / "t.jsonl"
    write_trace_file(path, make_spans([_session("sess_one", 1000, 50)]))
    ui = UiProcess("--source", str(path))
    try:
        page.goto(ui.url)
        assert page.locator("#charts").is_hidden()
        assert "from 3 sessions up" in page.locator("#charts-few").inner_text()
        # Two more sessions arrive while the page is open: the live list shows the charts.
        write_trace_file(
            path, make_spans([_session("sess_one", 1000, 50), *(_session(f"sess_{i}", 1200, 60) for i in (2, 3))])
        )
        # Polled from here: the page's CSP refuses wait_for_function's string evaluation.
        shown = wait_for(lambda: page.evaluate("() => !document.getElementById('charts').hidden"), timeout=15)
        assert shown, (page.errors, page.locator("#totals").inner_text())
        assert page.locator("#charts-few").is_hidden()
        loaded = "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        assert wait_for(lambda: page.evaluate(loaded), timeout=15)
        widths = page.evaluate(
            "() => Array.from(document.querySelectorAll('section.charts figure')).map("
            "f => [f.getBoundingClientRect().width, f.querySelector('img').getBoundingClientRect().width])"
        )
        for card, image in widths:
            assert image >= card - 16, widths  # the image fills its card (less the padding), not 560 px
    finally:
        ui.stop()


def _svg(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


@browser_needed
def test_chart_axes_are_whole_and_sub_second_ends_differ(tmp_path: Path, page: Any) -> None:  # noqa: F811
    # Three sessions within 0.3 s costing $0.0000081 each: labels like $0.0000080 on the y axis.
    path = write_trace_file(
        tmp_path / "t.jsonl", make_spans([_session(f"sess_{i}", 1000 + 100 * i, 40) for i in range(3)])
    )
    ui = UiProcess("--source", str(path))
    try:
        svg = _svg(ui.url + "charts/cost-by-agent.svg")
        labels = re.findall(r'text-anchor="end" fill="#7b8794">([^<]*)</text>', svg)
        assert any(label.startswith("$0.00000") for label in labels), labels
        # The two ends of the time axis: a time, then an offset, not the same second twice.
        ends = re.findall(r'y="200" (?:text-anchor="end" )?fill="#7b8794">([^<]*)</text>', svg)
        assert len(ends) == 2 and ends[0] != ends[1] and ends[1].startswith("+"), ends
        # Drawn in the browser: no label starts left of the image (a cut "$").
        page.goto(ui.url + "charts/cost-by-agent.svg")
        lefts = page.evaluate("() => Array.from(document.querySelectorAll('text')).map(t => t.getBBox().x)")
        assert min(lefts) >= 0, lefts
    finally:
        ui.stop()


@browser_needed
def test_a_request_opens_to_its_start_offset_and_duration(tmp_path: Path, page: Any) -> None:  # noqa: F811
    path = write_trace_file(tmp_path / "t.jsonl", make_spans([support_session()]))
    ui = UiProcess("--source", str(path))
    try:
        page.goto(ui.url + "sessions/" + support_session().session_id)
        page.wait_for_selector("#waterfall")
        page.locator(".wf-row.req").nth(1).click()
        detail = page.locator(".detail").first.inner_text()
        assert re.search(r"start\s+\+\d+(\.\d+)?(ms|s) after the session started", detail), detail
        assert re.search(r"duration\s+\d+(\.\d+)?(ms|s)", detail), detail
        head = page.locator(".session-head").inner_text()
        assert "totals check" in head.lower()
        assert "roll-up" not in head.lower()
    finally:
        ui.stop()
