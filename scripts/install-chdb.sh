#!/usr/bin/env bash
# Install chDB (embedded ClickHouse: the engine, no server) into its own virtual
# environment, for the ClickHouse tests: tests/chdb_server.py runs under it and
# serves ClickHouse's HTTP interface on loopback. The venv is
# $ALEPHANT_CHDB_VENV (.ci/run keeps it in ~/.cache/alephant-otel between runs),
# default ~/.cache/alephant-otel/venv-chdb.
#
# chdb-core-lite is the engine alone (a 51 MB wheel; chdb itself adds pandas and
# pyarrow on top of the full 200+ MB chdb-core): MergeTree, Map, Nested,
# AggregatingMergeTree and materialized views are all in it.
#
# Idempotent: does nothing when the pinned version is already installed (its
# stamp file says so and chdb imports). Two runs at once take turns (flock).
# Never fails the caller: when the install fails it says why, removes the
# half-built venv (the tests then skip with a reason) and exits 0.
#
# Usage: bash scripts/install-chdb.sh        (ALEPHANT_CHDB_VERSION overrides the pin)
set -uo pipefail
cd "$(dirname "$0")/.."

version="${ALEPHANT_CHDB_VERSION:-26.5.0}"
venv="${ALEPHANT_CHDB_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/alephant-otel/venv-chdb}"
# Written last: a venv without it (interrupted, failed) is never taken as installed.
marker="$venv/alephant-chdb-installed"
python="${PYTHON:-python3}"

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    exec 9<"$(dirname "$venv")"  # a lock on the parent directory: no lock file left behind
    flock 9
fi

check='from chdb import session; session.Session().query("SELECT 1")'
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "install-chdb: chdb-core-lite $version already in $venv"
    exit 0
fi

give_up() {
    echo "install-chdb: WARNING: could not install chdb-core-lite $version ($1);" \
        "the ClickHouse tests will be skipped" >&2
    rm -rf "$venv"
    exit 0
}

start=$(date +%s)
rm -rf "$venv"
"$python" -m venv "$venv" || give_up "python3 -m venv failed"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Bounded in time: a stuck download must not eat the CI budget.
timeout 900 "$venv/bin/python" -m pip install --quiet "chdb-core-lite==$version" \
    || give_up "pip install failed or timed out"
"$venv/bin/python" -c "$check" || give_up "chdb does not run"
echo "$version" >"$marker"
echo "install-chdb: chdb-core-lite $version installed in $venv in $(($(date +%s) - start)) s"
