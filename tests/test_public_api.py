"""The public surface: __all__ is honest, every public name is documented, the package stays light."""

from __future__ import annotations

import subprocess
import sys

import alephant_otel
import alephant_otel.testing


def test_all_lists_exactly_the_public_names() -> None:
    import types

    public = {
        n for n, v in vars(alephant_otel).items()
        if n.isidentifier() and not n.startswith("_") and not isinstance(v, types.ModuleType)
    } - {"annotations"}
    assert public == set(alephant_otel.__all__) - {"__version__"}
    assert sorted(alephant_otel.testing.__all__) == alephant_otel.testing.__all__


def test_every_public_name_has_a_docstring() -> None:
    for module in (alephant_otel, alephant_otel.testing):
        for name in module.__all__:
            if name != "__version__":
                assert (getattr(module, name).__doc__ or "").strip(), f"{module.__name__}.{name}"


def test_import_does_not_load_the_emulator_or_analytics() -> None:
    code = ("import sys, alephant_otel; bad = [m for m in sys.modules if m.startswith("
            "('alephant_otel.testing', 'alephant_otel.analytics', 'alephant_otel._cli', 'rich'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
