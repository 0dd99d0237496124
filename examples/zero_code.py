"""(2) Zero code: run an unmodified app under ``opentelemetry-instrument``.

Installing alephant-otel is enough: its entry points add the span processor
and the gateway header hooks to the httpx/httpx2 instrumentation. This
launcher starts a gateway emulator (unless ALEPHANT_VIRTUAL_KEY is set) and
runs zero_code_app.py under opentelemetry-instrument with console export.

    python examples/zero_code.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from _gateway import gateway

here = Path(__file__).parent
instrument = (
    shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent)) or "opentelemetry-instrument"
)

with gateway() as gw:
    env = {
        **os.environ,
        "ALEPHANT_GATEWAY_URL": gw.url,
        "OTEL_SERVICE_NAME": "zero-code-app",
        "OTEL_TRACES_EXPORTER": os.environ.get("OTEL_TRACES_EXPORTER", "console"),
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    done = subprocess.run([instrument, sys.executable, str(here / "zero_code_app.py")], env=env, check=False)
    gw.print_received()
    sys.exit(done.returncode)
