"""Where alephant-otel's per-request time goes, stage by stage, inside a real request loop.

A sampling profiler over a loopback loop is dominated by httpx, h11 and the
SDK; micro-benchmarks of one function run with hot caches and read 2-3x low.
This times each stage of the package's own hot path in place instead: the
``alephant`` variant of ``_workers.py`` runs N real requests against
``_server.py`` with a ``perf_counter_ns`` pair around each stage. Stages nest
(``body end`` contains ``parse`` and ``record``), and each timer adds ~0.2 µs.

    python benchmarks/stages.py [--requests 5000] [--lib httpx|httpx2] [--stream]
"""

from __future__ import annotations

import argparse
import collections
import functools
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workers  # noqa: E402

from alephant_otel.record import _processor  # noqa: E402
from alephant_otel.wire import _hooks, _request, _response, _watch  # noqa: E402

#: (object, attribute, label) of every timed stage.
STAGES = [
    (_processor.AlephantSpanProcessor, "on_start", "span processor on_start (ids on the request span)"),
    (_hooks.Bridge, "_on_request", "request hook"),
    (_request, "_add_headers", "  · gateway headers and request id"),
    (_request, "read_request", "  · model named in the request body (a small body parsed)"),
    (_request, "active_state", "  · baggage -> ids (cached)"),
    (_hooks.Bridge, "_on_response", "response hook (header reads, body watcher set-up)"),
    (_response, "watch_stream", "  · watch_stream"),
    (_watch.BodyWatcher, "finish", "body end: parse + record + span end"),
    (_response, "parse_body", "  · parse_response"),
    (_hooks.Bridge, "_record", "  · record (attributes, cost, roll-ups, metrics)"),
    (_response, "compute_cost", "    · compute_cost"),
]


def _timed(func: Any, label: str, totals: collections.Counter[str]) -> Any:
    clock = time.perf_counter_ns

    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return func(*args, **kwargs)
        finally:
            totals[label] += clock() - t0

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--lib", choices=["httpx", "httpx2"], default="httpx")
    parser.add_argument("--stream", action="store_true", help="500-chunk streams instead of JSON replies")
    args = parser.parse_args()

    totals: collections.Counter[str] = collections.Counter()
    for obj, name, label in STAGES:
        setattr(obj, name, _timed(getattr(obj, name), label, totals))
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    try:
        with ExitStack() as stack:
            mod, flush = _workers.setup("alephant", url, args.lib, stack)
            client = stack.enter_context(mod.Client(base_url=url))
            headers = {**_workers.HEADERS, "x-bench-chunks": "500"}

            def one() -> None:
                if args.stream:
                    with client.stream("POST", _workers.CHAT_PATH, content=_workers.STREAM_BODY, headers=headers) as r:
                        for _ in r.iter_bytes():
                            pass
                else:
                    client.post(_workers.CHAT_PATH, content=_workers.BODY, headers=_workers.HEADERS).read()

            for _ in range(200):
                one()
            flush()
            totals.clear()
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.requests):
                one()
            flush()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        server.kill()
    n = args.requests
    kind = "500-chunk streams" if args.stream else "requests"
    print(f"{n} {kind} ({args.lib}), client CPU {cpu / n * 1e6:.0f} µs, wall {wall / n * 1e6:.0f} µs each")
    print(f"{'stage':58s} {'µs each':>8s}")
    for _, _, label in STAGES:
        print(f"{label:58s} {totals[label] / n / 1000:8.1f}")


if __name__ == "__main__":
    main()
