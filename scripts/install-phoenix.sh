#!/usr/bin/env bash
# Install Arize Phoenix into its own virtual environment, .venv-phoenix (or
# $ALEPHANT_PHOENIX_VENV: .ci/run keeps it in ~/.cache between runs), for
# tests/test_phoenix.py (a real Phoenix server started on loopback). Phoenix
# is heavy and pins its own dependencies, so it never shares the dev venv.
#
# Idempotent: does nothing when the pinned version is already installed (its
# stamp file says so and Phoenix imports). Two runs at once take turns (flock).
# Never fails the caller: when the install fails it says why, removes the
# half-built venv (the test then skips with a reason) and exits 0.
#
# Usage: bash scripts/install-phoenix.sh        (ALEPHANT_PHOENIX_VERSION overrides the pin)
set -uo pipefail
cd "$(dirname "$0")/.."

version="${ALEPHANT_PHOENIX_VERSION:-20.26.1}"
venv="${ALEPHANT_PHOENIX_VENV:-.venv-phoenix}"
# Written last: a venv without it (interrupted, failed) is never taken as installed.
marker="$venv/alephant-phoenix-installed"
python="${PYTHON:-python3}"

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    exec 9<"$(dirname "$venv")"  # a lock on the parent directory: no lock file left behind
    flock 9
fi

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
