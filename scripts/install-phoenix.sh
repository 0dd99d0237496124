#!/usr/bin/env bash
# Install Arize Phoenix into its own virtual environment, .venv-phoenix, for
# tests/test_phoenix.py (a real Phoenix server started on loopback). Phoenix
# is heavy and pins its own dependencies, so it never shares the dev venv.
#
# Idempotent: does nothing when the pinned version is already installed.
# Never fails the caller: when the install fails it says why, removes the
# half-built venv (the test then skips with a reason) and exits 0.
#
# Usage: bash scripts/install-phoenix.sh        (ALEPHANT_PHOENIX_VERSION overrides the pin)
set -uo pipefail
cd "$(dirname "$0")/.."

version="${ALEPHANT_PHOENIX_VERSION:-20.26.1}"
venv=.venv-phoenix
# Written last: a venv without it (interrupted, failed) is never taken as installed.
marker="$venv/alephant-phoenix-installed"
python="${PYTHON:-python3}"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && "$venv/bin/python" -c "import phoenix.server.main" 2>/dev/null; then
    echo "install-phoenix: arize-phoenix $version already in $venv"
    exit 0
fi

give_up() {
    echo "install-phoenix: WARNING: could not install arize-phoenix $version ($1);" \
        "tests/test_phoenix.py will be skipped" >&2
    rm -rf "$venv"
    exit 0
}

start=$(date +%s)
rm -rf "$venv"
"$python" -m venv "$venv" || give_up "python3 -m venv failed"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Bounded in time: a stuck download must not eat the CI budget.
timeout 1200 "$venv/bin/python" -m pip install --quiet "arize-phoenix==$version" \
    || give_up "pip install failed or timed out"
"$venv/bin/python" -c "import phoenix.server.main" || give_up "phoenix does not import"
echo "$version" >"$marker"
echo "install-phoenix: arize-phoenix $version installed in $venv in $(($(date +%s) - start)) s"
