"""Every script in examples/ runs against the local emulator and shows the ids on the wire."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _util import BIN, EXAMPLES, clean_env, imported_modules, plain_install_modules

CASES = {
    "manual_baggage.py": ["'alephant-session-id': 'support-case-1042'", "'Alephant-Run-Id': 'run-refund-1'"],
    "zero_code.py": ["'alephant-session-id': 'zero-code-session'", "reply:"],
    "openai_session.py": ["'Alephant-Agent-Id': 'triage'", "'Alephant-Agent-Id': 'responder'", "trace file:"],
    "async_agents.py": ["'Alephant-Agent-Id': 'researcher'", "'alephant-session-path': '/research'"],
    "two_services.py": ["service B: {'session_id': 'sess_", "'Alephant-Agent-Id': 'worker'"],
}


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_") and p.name != "zero_code_app.py"}
    assert scripts == set(CASES)


def test_examples_need_only_a_plain_install() -> None:
    # `pip install alephant-otel openai` is all the README asks for (an editable install of the
    # package itself is not in the metadata's module map: named here).
    plain = plain_install_modules("alephant-otel", "openai") | {"alephant_otel", "_gateway"}
    for path in sorted(EXAMPLES.glob("*.py")):
        missing = imported_modules(path.read_text()) - plain
        assert not missing, f"examples/{path.name} imports {sorted(missing)}, which a plain install lacks"


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script: str, tmp_path) -> None:
    env = clean_env(PATH=f"{BIN}:{clean_env().get('PATH', '')}", ALEPHANT_TRACE_FILE=str(tmp_path / "t.jsonl"))
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=str(EXAMPLES), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for needle in CASES[script]:
        assert needle in done.stdout, done.stdout
    assert "Traceback" not in done.stderr
