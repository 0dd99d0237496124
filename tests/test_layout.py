"""The layout of ``src/``: stages as packages, one concern per module, no import circles.

docs/architecture.md says what each folder holds and may import; the contracts in
pyproject.toml (``[tool.importlinter]``) enforce the layers, and ``lint-imports``
runs in CI. These tests add what those contracts do not check: the size of each
module, and circles between single modules (import-linter's ``acyclic_siblings``
looks at siblings of one package, not at a module importing its own package).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "alephant_otel"
BENCHMARKS = ROOT / "benchmarks"
#: A module past this usually holds two concerns (issue 30).
MAX_LINES = 450
STAGES = ("context", "wire", "record", "export", "redact", "setup", "analytics", "cli", "web", "testing")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_circle() -> None:
    # The check below must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_stage_is_a_package_with_its_rule() -> None:
    for stage in STAGES:
        init = SRC / stage / "__init__.py"
        assert init.is_file(), stage
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{stage}/__init__.py says what the stage holds and may import"


def test_no_module_is_over_the_limit() -> None:
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    assert sizes, "no modules found"
    over = {path: lines for path, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_no_import_circle_between_modules() -> None:
    graph = grimp.build_graph("alephant_otel", exclude_type_checking_imports=True)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert len(edges) > 50
    assert _cycles(edges) == []


def test_no_import_circle_between_benchmark_scripts() -> None:
    names = {p.stem for p in BENCHMARKS.glob("*.py")}
    edges: dict[str, set[str]] = {}
    for path in BENCHMARKS.glob("*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
        edges[path.stem] = imported & names - {path.stem}
    assert "run" in edges and "peers" in edges
    assert _cycles(edges) == []


@pytest.mark.skipif(sys.platform == "win32", reason="the console script path differs")
def test_the_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed in this environment")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout
