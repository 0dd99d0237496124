"""A 40-level chain of nested runs is shown whole (issue 36), by the real CLI in a child process.

The chain is made by the library itself: 40 ``run()`` scopes nested in one
``session()``, one request to the gateway emulator at the bottom, written to a
trace file. ``sessions show`` (terminal at 80 and 200 columns, ``--json``) and
the ``--html`` page must show every run and the request; past a depth the
indentation stops growing and the depth is written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_ui import browser  # noqa: F401 (the fixture: Debian's chromium through playwright)

from alephant_otel.analytics._render import MAX_INDENT

DEPTH = 40
MAKE_CHAIN = textwrap.dedent(
    """
    import sys
    from contextlib import ExitStack

    import httpx

    import alephant_otel
    from alephant_otel.testing import GatewayEmulator

    with GatewayEmulator() as gw:
        alephant_otel.configure(gateway_url=gw.url, trace_file=sys.argv[1])
        with alephant_otel.session("sess_deep", name="deep"), ExitStack() as stack:
            for i in range(int(sys.argv[2])):
                stack.enter_context(alephant_otel.run(f"run_{i:02d}", agent_id=f"agent{i:02d}"))
            httpx.post(
                gw.url + "/v1/chat/completions",
                json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-request-id": "req_bottom"},
            )
    """
)
RUN_IDS = [f"run_{i:02d}" for i in range(DEPTH)]


def cli(*argv: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "alephant_otel.cli._main", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deep") / "traces.jsonl"
    made = subprocess.run(
        [sys.executable, "-c", MAKE_CHAIN, str(path), str(DEPTH)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return path


@pytest.mark.parametrize(("columns", "indented"), [(40, 1), (80, MAX_INDENT), (200, MAX_INDENT)])
def test_the_terminal_tree_shows_all_40_runs_and_the_request(chain: Path, columns: int, indented: int) -> None:
    shown = cli("sessions", "show", "sess_deep", "--source", str(chain), columns=columns)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert all(len(line) <= columns for line in out.splitlines())
    assert re.findall(r"run_\d\d", out) == RUN_IDS
    assert "req_bottom" in out
    # The first levels indent (fewer on a narrow terminal); every deeper one says its depth
    # (1 = a top-level run). A label may wrap on a narrow terminal: read the text unwrapped.
    flat = re.sub(r"\s*\n[\s│├└─]*", " ", out)
    assert [int(d) for d in re.findall(r"\[depth (\d+)\]", flat)] == list(range(indented + 1, DEPTH + 2))
    assert re.search(r"\[depth 41\] chat openai/gpt-4o-mini", flat)


def test_json_nests_all_40_runs(chain: Path) -> None:
    shown = cli("sessions", "show", "sess_deep", "--source", str(chain), "--json")
    assert shown.returncode == 0, shown.stderr
    s = json.loads(shown.stdout)["session"]
    assert s["runs"] == DEPTH
    ids, level = [], s["runs_tree"]
    while level:
        (run,) = level
        ids.append(run["run_id"])
        last, level = run, run["runs"]
    assert ids == RUN_IDS
    assert [q["request_id"] for q in last["requests"]] == ["req_bottom"]


def html_rows(page: Path) -> list[dict[str, Any]]:
    found = re.search(r'<script type="application/json" id="session-data">(.*?)</script>', page.read_text(), re.S)
    assert found is not None
    rows: list[dict[str, Any]] = json.loads(found.group(1))["rows"]
    return rows


def test_the_html_page_has_every_run_row_within_its_label_column(chain: Path, tmp_path: Path) -> None:
    page = tmp_path / "deep.html"
    shown = cli("sessions", "show", "sess_deep", "--source", str(chain), "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    rows = html_rows(page)
    assert [r["run_id"] for r in rows if r["kind"] == "run"] == RUN_IDS
    assert [r["request_id"] for r in rows if r["kind"] == "request"] == ["req_bottom"]
    # The waterfall indents by "indent" (16 px a level); past the cap each row says its depth.
    assert max(r["indent"] for r in rows) == MAX_INDENT
    assert [r["depth"] + 1 for r in rows if r["deep"]] == list(range(MAX_INDENT + 1, DEPTH + 2))


def test_the_html_page_draws_every_run_label_inside_its_column(
    chain: Path,
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    page_file = tmp_path / "deep.html"
    assert cli("sessions", "show", "sess_deep", "--source", str(chain), "--html", str(page_file)).returncode == 0
    context = browser.new_context(viewport={"width": 1400, "height": 900}, offline=True)
    try:
        pg = context.new_page()
        pg.goto(page_file.as_uri())
        pg.wait_for_selector("#waterfall")
        # Each row's id, and its depth where written, must lie inside its label (which clips).
        inside = pg.evaluate(
            """() => Array.from(document.querySelectorAll('.wf-row.run .wf-label, .wf-row.req .wf-label'))
                 .map(label => {
                 const box = label.getBoundingClientRect();
                 const rid = label.querySelector('.rid').getBoundingClientRect();
                 return [label.querySelector('.rid').textContent, rid.left >= box.left && rid.right <= box.right];
               })"""
        )
        assert [rid for rid, _ in inside] == [*RUN_IDS, "req_bottom"]
        assert [rid for rid, ok in inside if not ok] == []
        assert pg.locator(".wf-label .depth").count() == DEPTH + 1 - MAX_INDENT
    finally:
        context.close()
