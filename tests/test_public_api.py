"""The public surface: __all__ is honest, every public name is documented, the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import alephant_otel
import alephant_otel.testing


def test_all_lists_exactly_the_public_names() -> None:
    import types

    # dir(), not vars(): the public names are imported on first use (PEP 562).
    public = {
        n for n in dir(alephant_otel)
        if n.isidentifier() and not n.startswith("_") and not isinstance(getattr(alephant_otel, n), types.ModuleType)
    } - {"annotations"}
    assert public == set(alephant_otel.__all__) - {"__version__"}
    assert {"session", "run", "tool"} <= public
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        alephant_otel.nope  # noqa: B018
    assert sorted(alephant_otel.testing.__all__) == alephant_otel.testing.__all__


def test_every_public_name_has_a_docstring() -> None:
    for module in (alephant_otel, alephant_otel.testing):
        for name in module.__all__:
            if name != "__version__":
                assert (getattr(module, name).__doc__ or "").strip(), f"{module.__name__}.{name}"


@pytest.mark.parametrize(
    "stmt",
    [
        "import alephant_otel",
        # The whole per-request path: set-up, scopes, hooks, processor, exporters.
        "import alephant_otel as a; a.configure; a.session; a.run; a.tool; a.gateway_headers; a.AlephantInstrumentor",
    ],
)
def test_import_does_not_load_the_cli_the_web_view_the_emulator_or_analytics(stmt: str) -> None:
    prefixes = ("alephant_otel.testing", "alephant_otel.analytics", "alephant_otel.cli", "alephant_otel.web", "rich")
    code = f"import sys; {stmt}; print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_and_a_plain_import_load_neither_the_sdk_nor_the_instrumentation() -> None:
    """``alephant-otel sessions`` only reads files: it starts without the SDK's weight (~0.4 s)."""
    heavy = ("opentelemetry.sdk", "opentelemetry.instrumentation", "google.protobuf", "wrapt")
    # The whole parser is built (every subcommand registered), as at every start of the command.
    parse = "import alephant_otel.cli._main as c; c.main(['sessions', 'list', '--source', '/nonexistent'])"
    for stmt in ("import alephant_otel", parse):
        code = f"import sys; {stmt}; print(sorted(m for m in sys.modules if m.startswith({heavy!r}))[:3])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]", f"{stmt}: {out.strip()}"
