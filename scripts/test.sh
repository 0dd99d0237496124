#!/usr/bin/env bash
# Run the whole test suite (the slow reliability set included). Used by the
# README and by CI. Exit code 5 (no tests collected) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest "$@"
