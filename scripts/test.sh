#!/usr/bin/env bash
# Run the whole test suite (the slow reliability and fuzz sets included) and
# the docstring examples, on every core (pytest-xdist). Used by the README and
# by CI. Extra arguments go to pytest instead, in one process
# (e.g. `bash scripts/test.sh tests/test_headers.py -x`).
# Exit code 5 (no tests collected) is a failure, like any non-zero code.
#
# --dist loadgroup: tests go to whichever worker is free, except that a module
# marked with an xdist_group (test_phoenix.py: one Phoenix server) stays on
# one worker; --no-loadscope-reorder keeps conftest.py's order (slow first,
# Phoenix last). ALEPHANT_TEST_WORKERS overrides the worker count.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    exec python -m pytest "$@"
fi
# --durations: the slowest tests, to see where the time goes (issue 23).
python -m pytest -n "${ALEPHANT_TEST_WORKERS:-auto}" --dist loadgroup --no-loadscope-reorder --durations=25 \
    --doctest-modules src/alephant_otel tests
