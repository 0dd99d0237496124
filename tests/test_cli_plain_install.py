"""``alephant-otel sessions`` on a plain ``pip install .``: Tempo, Jaeger and Phoenix read over loopback HTTP.

The venv is made once for the module, in a temporary directory, with the
package's declared dependencies only (no ``dev`` extra, no ``httpx``): what a
user has after ``pip install alephant-otel``. The backends are the recorded
responses of ``tests/fixtures/`` served by a real HTTP server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures import backend_server
from fixtures.backend_server import BackendServer, Route, jaeger_route, phoenix_route, tempo_route

#: The fixture starting loopback backends (shared with the other backend tests).
serve = backend_server.serve
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def plain_venv(plain_install: Path) -> Path:
    """The bin directory of the run's plain ``pip install <this checkout>`` venv (see conftest)."""
    return plain_install


def run(bin_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # Piped, with no COLUMNS: one wide page (pytest's own COLUMNS would wrap the tree).
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [str(bin_dir / "alephant-otel"), *argv], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_the_plain_install_has_no_httpx(plain_venv: Path) -> None:
    """Otherwise the tests below would not show that the backends read without it."""
    probe = subprocess.run(
        [str(plain_venv / "python"), "-c", "import httpx"], capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode != 0
    assert "No module named 'httpx'" in probe.stderr


def test_tempo_on_a_plain_install(plain_venv: Path, serve: Callable[[Route], BackendServer]) -> None:
    srv = serve(tempo_route)
    listed = run(plain_venv, "sessions", "list", "--source", f"tempo+{srv.url}", "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    doc = json.loads(listed.stdout)
    assert {s["session_id"] for s in doc["sessions"]} == {"sess_a", "sess_b"}
    assert doc["source"] == f"tempo at {srv.url}"
    shown = run(plain_venv, "sessions", "show", "sess_a", "--source", f"tempo+{srv.url}")
    assert shown.returncode == 0, shown.stderr
    assert "session sess_a" in shown.stdout
    assert "intercepted: PII detected in prompt" in shown.stdout
    assert srv.requests[0][0] == "/api/search"


def test_a_prefix_on_tempo_reads_the_sessions_to_match_it(
    plain_venv: Path, serve: Callable[[Route], BackendServer]
) -> None:
    """Tempo is asked for the exact id first; a prefix then matches among all the sessions."""
    srv = serve(tempo_route)
    shown = run(plain_venv, "sessions", "show", "sess_", "--source", f"tempo+{srv.url}")
    assert shown.returncode == 1
    assert "matches 2 sessions" in shown.stderr
    assert "sess_a" in shown.stderr
    assert "sess_b" in shown.stderr


def test_jaeger_and_phoenix_on_a_plain_install(plain_venv: Path, serve: Callable[[Route], BackendServer]) -> None:
    jaeger = serve(jaeger_route)
    phoenix = serve(phoenix_route)
    for source in (f"jaeger+{jaeger.url}", f"phoenix+{phoenix.url}?project=support-bot"):
        listed = run(plain_venv, "sessions", "list", "--source", source, "--json")
        assert listed.returncode == 0, listed.stderr
        assert {s["session_id"] for s in json.loads(listed.stdout)["sessions"]} == {"sess_a", "sess_b"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_connection_failure_is_one_line_naming_the_url(plain_venv: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    for backend in ("tempo", "jaeger", "phoenix"):
        listed = run(plain_venv, "sessions", "list", "--source", f"{backend}+{url}")
        assert listed.returncode == 1
        assert listed.stderr == f"alephant-otel: cannot reach {backend} at {url}: connection refused\n"
