#!/usr/bin/env bash
# Create one virtual environment per peer arm of `benchmarks/run.py --peers`, from pinned versions.
#
#   bash benchmarks/peers_setup.sh [ARM ...]     # default: every peer arm
#
# Each peer lives in benchmarks/.venvs/<arm> (git-ignored), apart from the package's own
# environment: the peers pin OpenTelemetry and openai ranges of their own, and none of them
# becomes a dependency of alephant-otel. Every arm gets the same openai SDK, httpx2 and
# OpenTelemetry SDK as the project's dev environment, so that they drive the same client
# code; `pip freeze` of each lands in its folder (freeze.txt) as the record of what ran.
# Re-running is cheap: an arm already installed from the same pins is skipped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

# Shared by every arm: the client and SDK being measured.
common=(
  "openai==3.60.0"
  "httpx2==2.16.2"
  "opentelemetry-api==1.45.2"
  "opentelemetry-sdk==1.45.2"
  "opentelemetry-instrumentation==0.66b2"
  "opentelemetry-instrumentation-httpx==0.66b2"
  # The *_otlp arms: a real OTLP/HTTP exporter.
  "opentelemetry-exporter-otlp-proto-http==1.45.2"
)

peer_packages() {
  case "$1" in
    # openai-v2 2.4b0 imports httpx (httpx.URL) though openai 3.x sends with httpx2.
    # and needs opentelemetry-util-genai < 1.2 (1.2 renamed the module it imports).
    openai_v2) echo "opentelemetry-instrumentation-openai-v2==2.4b0 opentelemetry-util-genai==1.1b0 httpx==0.28.1" ;;
    traceloop) echo "opentelemetry-instrumentation-openai==0.62.4" ;;
    openinference) echo "openinference-instrumentation-openai==0.1.66" ;;
    logfire) echo "logfire==5.4.0" ;;
    *) echo "unknown peer arm: $1" >&2; return 2 ;;
  esac
}

arms=("$@")
[ ${#arms[@]} -gt 0 ] || arms=(openai_v2 traceloop openinference logfire)
for arm in "${arms[@]}"; do
  pkg="$(peer_packages "$arm")"
  venv="$here/.venvs/$arm"
  stamp="${common[*]} $pkg"
  if [ "$(cat "$venv/pins.txt" 2>/dev/null)" = "$stamp" ]; then
    echo "$arm: $venv is up to date"
    continue
  fi
  start=$SECONDS
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # shellcheck disable=SC2086 # $pkg: one or more requirement specifiers
  "$venv/bin/pip" install -q --disable-pip-version-check "${common[@]}" $pkg 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import openai, httpx2, opentelemetry.sdk.trace" # fails the script if the install did
  "$venv/bin/pip" freeze --disable-pip-version-check > "$venv/freeze.txt"
  echo "$stamp" > "$venv/pins.txt"
  echo "$arm: $pkg in $venv ($((SECONDS - start)) s)"
done
