#!/usr/bin/env bash
# Run the whole test suite (the slow reliability set included) and the
# docstring examples. Used by the README and by CI. Extra arguments go to
# pytest instead (e.g. `bash scripts/test.sh tests/test_headers.py -x`).
# Exit code 5 (no tests collected) is a failure, like any non-zero code.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    exec python -m pytest "$@"
fi
python -m pytest --doctest-modules src/alephant_otel tests
