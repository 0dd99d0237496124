"""Function calls per request, package vs libraries: a noise-free view of the added work.

Timings on a shared machine move by ±25% within an hour; call counts do not.
This runs N real requests per variant (each in its own process, against
``_server.py``) under ``cProfile`` and reports, per request, how many Python
and C function calls each variant makes, how many of the added ones are the
package's own, and which library functions are called more often because of
what the package adds (extra headers, attributes, a processor). cProfile's
times are inflated by its own per-call cost, so they are shown only to rank
functions, never as figures.

    python benchmarks/calls.py [--requests 1000] [--lib httpx|httpx2] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE_MARK = "alephant_otel"


def _short(filename: str, line: int, name: str) -> str:
    for mark in ("site-packages/", "/src/", "/lib/python3."):
        if mark in filename:
            filename = filename.split(mark, 1)[1]
            break
    return f"{filename}:{line}({name})" if line else name


def worker(variant: str, lib: str, url: str, requests: int) -> None:
    """Profile ``requests`` requests of ``variant``.

    Prints ``{function: [calls, seconds, calls made from alephant_otel's functions]}`` as JSON.
    """
    sys.path.insert(0, str(HERE))
    import _workers

    with ExitStack() as stack:
        mod, flush = _workers.setup(variant, url, lib, stack)
        client = stack.enter_context(mod.Client(base_url=url))

        def one() -> None:
            client.post(_workers.CHAT_PATH, content=_workers.BODY, headers=_workers.HEADERS).read()

        for _ in range(300):
            one()
        flush()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(requests):
            one()
        flush()
        profile.disable()
    stats: Any = pstats.Stats(profile)
    out = {
        _short(filename, line, name): [
            calls,
            seconds,
            sum(c[1] for caller, c in callers.items() if PACKAGE_MARK in caller[0]),
        ]
        for (filename, line, name), (_, calls, seconds, _, callers) in stats.stats.items()
    }
    json.dump(out, sys.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--lib", choices=["httpx", "httpx2"], default="httpx")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.lib, args.worker[1], args.requests)
        return

    server = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for variant in ("bare", "otel", "otel_bsp", "alephant"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--lib",
                    args.lib,
                    "--requests",
                    str(args.requests),
                    "--worker",
                    variant,
                    url,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[variant] = json.loads(out)
    finally:
        server.kill()

    n = args.requests

    def calls(variant: str, own: bool | None = None) -> float:
        return sum(c for key, (c, _, _) in results[variant].items() if own is None or (PACKAGE_MARK in key) == own) / n

    def called_by_package(variant: str) -> float:
        return sum(by_us for key, (_, _, by_us) in results[variant].items() if PACKAGE_MARK not in key) / n

    print(f"{n} requests per variant ({args.lib}); function calls per request (cProfile: Python and C calls)")
    for variant in results:
        print(f"  {variant:10s} {calls(variant):8.0f}")
    base, ours = results["otel"], results["alephant"]
    print(f"alephant - otel: {calls('alephant') - calls('otel'):+.0f} calls per request, of which")
    print(f"  {calls('alephant', own=True):.0f} in alephant_otel's own functions")
    by_us = called_by_package("alephant")
    print(f"  {by_us:.0f} library and builtin calls made directly by those functions")
    print(
        f"  {calls('alephant', own=False) - calls('otel', own=False) - by_us:+.0f} more inside libraries: deeper in"
        " what the package calls, and httpx, h11 and the SDK handling more headers, attributes and a processor"
    )
    print(f"  (otel_bsp - otel, the public equivalent: {calls('otel_bsp') - calls('otel'):+.0f})")
    added = []
    for key in set(base) | set(ours):
        if PACKAGE_MARK in key:
            continue
        c0, t0, _ = base.get(key, [0, 0.0, 0])
        c1, t1, from_us = ours.get(key, [0, 0.0, 0])
        if c1 - from_us != c0:
            # Only what libraries call more often: a builtin the package calls is its own cost.
            share = (c1 - from_us) / c1 if c1 else 0.0
            added.append(((t1 * share - t0) / n * 1e6, (c1 - from_us - c0) / n, key))
    added.sort(reverse=True)
    print(f"\ncalled more often by libraries with alephant (not by its own code), top {args.top} by profiled time")
    print(f"{'calls':>8s} {'profiled µs':>12s}  function")
    for us, count, key in added[: args.top]:
        print(f"{count:+8.2f} {us:12.2f}  {key}")


if __name__ == "__main__":
    main()
