"""Benchmark: the web view in headless Chromium.

Run by hand (not by the test suite)::

    .venv/bin/python benchmarks/bench_ui.py [--requests 2000] [--sessions 10000] [--runs 5]

Measures, with Debian's Chromium (/usr/bin/chromium) driven by Playwright:

- **session page**: ``/sessions/{id}`` of one session of ``--requests`` requests
  (20 runs, every other one nested, as in a long agent workflow), served by
  ``alephant-otel ui``: navigation start to the waterfall drawn (the page sets
  ``body[data-rendered]``), and the script's own drawing time;
- **--html file**: the same session exported with ``sessions show --html``,
  opened from ``file://`` with the network off;
- **list page**: ``/`` over ``--sessions`` sessions (20 spans each, the
  ``bench_analytics`` shape), paged on the server: the first load (the whole
  file read) and a later load (sorted by cost, a filter).

Prints the median of ``--runs`` loads of each. Target: the session page
under 2 s.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analytics import T0, _kv, _span, write_file

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLI = [sys.executable, "-m", "alephant_otel.cli._main"]


def big_session(path: Path, requests: int) -> str:
    """One session of ``requests`` requests in 20 runs; returns its id."""
    rng = random.Random(7)
    sid = "sess_bench_big"
    base = {"alephant.session.id": sid, "alephant.session.name": "long workflow", "alephant.session.path": "/bench"}
    tid = f"{rng.getrandbits(128):032x}"
    spans = []
    sess_span, sess = _span(rng, tid, None, "session", T0, 600_000_000_000, {**base, "alephant.span.kind": "session"})
    spans.append(sess)
    runs = 20
    per_run = requests // runs
    parent_span, parent_run = sess_span, None
    for r in range(runs):
        rid = f"run_{r:02d}"
        agent = f"agent-{r % 5}"
        attrs = {**base, "alephant.agent.id": agent, "alephant.run.id": rid, "alephant.span.kind": "run"}
        if parent_run:
            attrs["alephant.run.parent_id"] = parent_run
        start = T0 + r * 30_000_000_000
        run_span, run = _span(rng, tid, parent_span, f"invoke_agent {agent}", start, 29_000_000_000, attrs)
        spans.append(run)
        for q in range(per_run + (requests % runs if r == runs - 1 else 0)):
            inp, out = rng.randint(50, 3000), rng.randint(10, 800)
            req_attrs = {
                **base,
                "alephant.agent.id": agent,
                "alephant.run.id": rid,
                "alephant.span.kind": "request",
                "alephant.request.id": f"req_{r:02d}_{q:04d}",
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "openai/gpt-4o-mini",
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": out,
                "alephant.cost.usd": inp * 1.5e-7 + out * 6e-7,
                "alephant.cost.source": "price_table",
                "http.response.status_code": 200,
            }
            if q % 50 == 7:
                req_attrs["alephant.retry.attempt"] = 1
            if q % 10 == 3:
                req_attrs["alephant.streaming"] = True
            _, req = _span(
                rng, tid, run_span, "chat openai/gpt-4o-mini", start + q * 280_000_000, 250_000_000, req_attrs
            )
            spans.append(req)
        # Every other run nests under the one before (a sub-agent).
        parent_span, parent_run = (run_span, rid) if r % 2 == 0 else (sess_span, None)
    resource = {"attributes": [_kv("service.name", "bench")]}
    with path.open("w", encoding="utf-8") as fh:
        for i in range(0, len(spans), 512):
            doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans[i : i + 512]}]}]}
            fh.write(json.dumps(doc, separators=(",", ":")) + "\n")
    return sid


class Ui:
    def __init__(self, source: Path) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "ui", "--no-browser", "--port", "0", "--source", str(source)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        match = re.search(r"(http://\S+/)", self.proc.stdout.readline())
        assert match, "the server printed no URL"
        self.url = match.group(1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jsonl"
        sid = big_session(big, args.requests)
        many = Path(tmp) / "many.jsonl"
        write_file(many, args.sessions * 20)
        html = Path(tmp) / "session.html"
        subprocess.run([*CLI, "sessions", "show", sid, "--source", str(big), "--html", str(html)], check=True)

        rows: list[tuple[str, str]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            # The list's first load reads the whole file: minutes on a loaded 2-core machine.
            browser_timeout_ms = 600_000
            ui = Ui(big)
            try:
                page_ms, draw_ms = [], []
                for _ in range(args.runs):
                    page = browser.new_page()
                    t = time.perf_counter()
                    page.goto(ui.url + f"sessions/{sid}")
                    page.wait_for_selector("body[data-rendered]")
                    page_ms.append((time.perf_counter() - t) * 1000)
                    draw_ms.append(page.evaluate("window.alephantRenderMs"))
                    count = page.locator(".wf-row.req").count()
                    assert count == args.requests, count
                    page.close()
                rows.append((f"session page, {args.requests:,} requests: load to waterfall drawn", median_ms(page_ms)))
                rows.append(("  of which the script's drawing", median_ms(draw_ms)))
            finally:
                ui.close()

            context = browser.new_context(offline=True)
            context.route("http*://**", lambda route: route.abort())
            html_ms = []
            for _ in range(args.runs):
                page = context.new_page()
                t = time.perf_counter()
                page.goto(html.as_uri())
                page.wait_for_selector("body[data-rendered]")
                html_ms.append((time.perf_counter() - t) * 1000)
                page.close()
            context.close()
            rows.append((f"--html file ({html.stat().st_size / 1e6:.1f} MB), offline", median_ms(html_ms)))

            ui = Ui(many)
            try:
                page = browser.new_page()
                page.set_default_timeout(browser_timeout_ms)
                t = time.perf_counter()
                page.goto(ui.url)
                first = (time.perf_counter() - t) * 1000
                rows.append(
                    (
                        f"list page, {args.sessions:,} sessions: first load (the vitals of all of them)",
                        f"{first:.0f} ms",
                    )
                )
                later = []
                for i in range(args.runs):
                    t = time.perf_counter()
                    page.goto(ui.url + f"?sort=cost&order={'asc' if i % 2 else 'desc'}&path=/support&page=3")
                    later.append((time.perf_counter() - t) * 1000)
                rows.append(("  a later load: sorted by cost, filtered, page 3", median_ms(later)))
                page.close()
            finally:
                ui.close()
            browser.close()

    print("| measure | median |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
