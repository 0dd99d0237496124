"""Every code block in README.md and in the pages of docs/ runs as written.

The convention, for whoever edits the README:

- Every fence names its language. ```python, ```bash and ```sh blocks are run; ```text (a synopsis,
  sample output) is shown only.
- Blocks run in README order, grouped by the nearest heading: each group in a fresh directory of its
  own, so a block can use a file an earlier block of the same section wrote. The interpreter running
  the tests is ``python`` and ``python3`` on PATH, with the package's console scripts; the environment
  carries no ``OTEL_*``/``ALEPHANT_*`` setting from outside, and ``XDG_DATA_HOME`` points into the
  directory (the demo's default trace file lands there).
- A python block runs as a script, a bash block under ``bash -euo pipefail``. Each must exit 0 within
  ``TIMEOUT`` seconds with no traceback and no error on stderr.
- ``pip install ...`` lines are not run (the suite runs in the environment under test); the packages
  they name must be installed in it.
- A marker, an HTML comment on the line right before the fence (invisible on GitHub), changes that:
  - ``<!-- readme-test: skip (REASON) -->``: not run. Kept rare (``MAX_SKIPS``), always with a reason.
  - ``<!-- readme-test: gateway -->``: the block talks to the gateway. The test starts
    ``alephant-otel emulator`` for the section, as the README tells a reader to, replaces
    ``https://ai.alephant.io`` in the block with its URL, and sets ``ALEPHANT_GATEWAY_URL`` and
    ``ALEPHANT_VIRTUAL_KEY``.
  - ``<!-- readme-test: file=NAME -->``: the block is saved as NAME in the section's directory for the
    blocks after it, and not run by itself.
  - ``<!-- readme-test: pytest -->``: the block is a test module, run by pytest.
  Words combine: ``<!-- readme-test: gateway file=app.py -->``.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from _util import BIN, ROOT, clean_env, imported_modules, plain_install_modules

README = ROOT / "README.md"
#: The pages the README links to: their blocks run too, section by section, as the README's do.
DOCS = sorted((ROOT / "docs").glob("*.md"))
#: The README is the front door: what it is, the quickstart, the ways in, the rest linked.
README_MAX_LINES = 350
REAL_GATEWAY = "https://ai.alephant.io"
#: The distributions of the agents and langgraph extras (pyproject.toml), for docs/agents.md.
EXTRAS = ("openai-agents", "langgraph", "langchain-openai")
RUN_LANGS = {"python", "bash", "sh"}
SHOW_LANGS = {"text"}
MAX_SKIPS = 4  # venv one-liner, .ci/run, docker compose, the peers benchmark (its runner has a smoke test)
TIMEOUT = 120
QUICKSTART_MAX_LINES = 20
#: What a section's output must show, beyond running cleanly (by section slug).
EXPECT = {
    # The tree of the Quickstart's own script: its session, its run, its request.
    "quickstart": ["session quickstart-1", "assistant run_", "chat openai/gpt-4o-mini"],
    "2-zero-code-opentelemetry-instrument": ["/support/zero-code"],
    # docs/conversations.md: the conversation printed, the key in the prompt scrubbed.
    "conversations--switching-it-on": ["system: You are a support agent.", "api_key=[Scrubbed due to 'api_key']"],
    "5-sessions-across-services-threads-and-queues": ["case-7\ncase-7\n"],
    "6-testing-your-own-code-the-alephant_gateway-fixture": ["1 passed"],
}
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_STDERR_BAD = re.compile(r"traceback|error|exception", re.IGNORECASE)


@dataclass
class Block:
    line: int
    lang: str
    code: str
    section: str
    marker: str = ""
    skip: str | None = None
    gateway: bool = False
    pytest: bool = False
    file: str | None = None
    bad: list[str] = field(default_factory=list)


def _slug(heading: str) -> str:
    # GitHub's anchor rule, near enough: lower case, punctuation dropped, spaces to dashes.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _parse_marker(block: Block) -> None:
    text = block.marker
    if not text:
        return
    if text.startswith("skip"):
        reason = re.fullmatch(r"skip\s*\((.+)\)", text)
        if reason is None or not reason.group(1).strip():
            block.bad.append(f"line {block.line}: a skip needs a reason: skip (why)")
        else:
            block.skip = reason.group(1).strip()
        return
    for word in text.split():
        if word == "gateway":
            block.gateway = True
        elif word == "pytest":
            block.pytest = True
        elif word.startswith("file=") and len(word) > 5:
            block.file = word[5:]
        else:
            block.bad.append(f"line {block.line}: unknown readme-test word {word!r}")


def blocks(text: str | None = None, *, page: Path = README) -> list[Block]:
    """The fenced blocks of a page (the README by default), with their section and marker."""
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    # Sections of other pages are named after the page, so that they group apart from the README's.
    prefix = "" if page == README else page.stem + "--"
    found: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = prefix + _slug(line.lstrip("#"))
        fence = _FENCE.match(line)
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(before)
        block = Block(
            i + 1, fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", section, marker.group(1) if marker else ""
        )
        _parse_marker(block)
        found.append(block)
        i = end + 1
    return found


def _all_blocks() -> list[Block]:
    return [b for page in (README, *DOCS) for b in blocks(page=page)]


def _sections() -> dict[str, list[Block]]:
    groups: dict[str, list[Block]] = {}
    for b in _all_blocks():
        if b.lang in RUN_LANGS and b.skip is None:
            groups.setdefault(b.section, []).append(b)
    return groups


# --- the convention holds ---------------------------------------------------------------


def test_every_fence_names_a_known_language() -> None:
    langs = {(b.section, b.line, b.lang) for b in _all_blocks() if b.lang not in RUN_LANGS | SHOW_LANGS}
    assert not langs, f"blocks with no language or an unknown one (line, language): {sorted(langs)}"


def test_markers_are_known_and_skips_are_few() -> None:
    all_blocks = _all_blocks()
    bad = [msg for b in all_blocks for msg in b.bad]
    assert not bad, bad
    skipped = [(b.line, b.skip) for b in all_blocks if b.skip is not None]
    assert len(skipped) <= MAX_SKIPS, f"too many README blocks skipped: {skipped}"
    assert all(b.lang in RUN_LANGS for b in all_blocks if b.marker), "a marker on a block that is not run"


def test_the_parser_sees_markers_and_sections() -> None:
    text = (
        "# T\n## A b\n<!-- readme-test: gateway file=x.py -->\n```python\nprint(1)\n```\n"
        "### C\n\n<!-- readme-test: skip -->\n\n```bash\nls\n```\n```\nbare\n```\n"
    )
    a, c, bare = blocks(text)
    assert (a.section, a.gateway, a.file, a.code) == ("a-b", True, "x.py", "print(1)\n")
    assert (c.section, c.skip, c.bad) == ("c", None, ["line 11: a skip needs a reason: skip (why)"])
    assert bare.lang == ""


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links <= _anchors(page), f"links to no heading: {sorted(links - _anchors(page))}"
    # Links to another page, and to a heading in it.
    for target, _, anchor in re.findall(r"\]\((?!#|https?:)([^)#]+)(#([^)]+))?\)", text):
        path = (page.parent / target).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(path), f"{page.name} links to {target}#{anchor}, a heading it lacks"


def test_the_readme_is_short_and_links_its_pages() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert DOCS, "no docs/ pages"
    linked = {(ROOT / f).resolve() for f in re.findall(r"\]\((docs/[^)#]+\.md)", text)}
    assert {d.resolve() for d in DOCS} <= linked, "a docs/ page the README does not link"


def test_python_blocks_compile() -> None:
    for b in _all_blocks():
        if b.lang == "python":
            compile(b.code, f"{b.section}:{b.line}", "exec")


def test_python_blocks_need_only_a_plain_install() -> None:
    # The Quickstart's `pip install alephant-otel openai` is the install the README promises.
    plain = plain_install_modules("alephant-otel", "openai") | {"alephant_otel"}
    # docs/agents.md says to install a framework's extra first: its blocks may use what the extras bring.
    extras = plain_install_modules("alephant-otel", "openai", *EXTRAS) | {"alephant_otel"}
    for b in _all_blocks():
        if b.lang == "python":
            missing = imported_modules(b.code) - (extras if b.section.startswith("agents--") else plain)
            assert not missing, f"{b.section}:{b.line} imports {sorted(missing)}, which a plain install lacks"


def test_quickstart_comes_first_and_is_short() -> None:
    text = README.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    assert sections[1].startswith("Quickstart\n"), "the Quickstart is the first section"
    body = [ln for ln in sections[1].splitlines()[1:] if ln.strip() and not _MARKER.match(ln.strip())]
    assert len(body) <= QUICKSTART_MAX_LINES, f"the Quickstart has {len(body)} lines:\n" + "\n".join(body)


# --- the blocks run -----------------------------------------------------------------------


def _shims(where: Path) -> Path:
    # A script, not a symlink: a symlinked venv interpreter outside its venv loses the venv.
    shims = where / ".bin"
    shims.mkdir()
    for name in ("python", "python3"):
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        shim.chmod(0o755)
    return shims


def _pip_lines_installed(code: str) -> tuple[str, list[str]]:
    """The bash block without its ``pip install`` lines, and the packages they name that are missing."""
    kept, missing = [], []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] != ["pip", "install"]:
            kept.append(line)
            continue
        for word in words[2:]:
            if word.startswith("-"):
                continue
            name = "alephant-otel" if word == "." else re.split(r"[\[<>=!~;]", word)[0]
            try:
                distribution(name)
            except PackageNotFoundError:
                missing.append(name)
    return "\n".join(kept) + "\n", missing


@dataclass
class _Emulator:
    """``alephant-otel emulator`` in a child process: its URL, and the requests it printed."""

    url: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=15)
        self.lines = [line for line in out.splitlines() if not line.startswith("#")]


@contextlib.contextmanager
def _gateway(needed: bool) -> Iterator[_Emulator | None]:
    if not needed:
        yield None
        return
    proc = subprocess.Popen(
        [str(BIN / "alephant-otel"), "emulator"], stdout=subprocess.PIPE, text=True, env=clean_env()
    )
    assert proc.stdout is not None
    emu = _Emulator(proc.stdout.readline().strip(), proc)
    # The second line says how to use it; what follows is a line per request.
    proc.stdout.readline()
    try:
        yield emu
    finally:
        emu.stop()


def _run(block: Block, where: Path, env: dict[str, str], emu: _Emulator | None) -> str:
    code = block.code.replace(REAL_GATEWAY, emu.url) if emu is not None and block.gateway else block.code
    if block.file is not None:
        (where / block.file).write_text(code)
        return ""
    if block.lang == "python" and block.pytest:
        (where / "test_readme_block.py").write_text(code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_block.py"]
    elif block.lang == "python":
        (where / "readme_block.py").write_text(code)
        argv = [sys.executable, "readme_block.py"]
    else:
        code, missing = _pip_lines_installed(code)
        assert not missing, f"{block.section}:{block.line} installs {missing}, which the test environment lacks"
        argv = ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(argv, cwd=where, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    shown = f"{block.section}:{block.line} ({block.lang})\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, shown
    assert not _STDERR_BAD.search(done.stderr), shown
    return done.stdout


@pytest.mark.parametrize("section", sorted(_sections()))
def test_readme_section_runs(section: str, tmp_path: Path) -> None:
    group = _sections()[section]
    shims = _shims(tmp_path)
    base = clean_env(PATH=f"{shims}:{BIN}:{clean_env().get('PATH', '')}", XDG_DATA_HOME=str(tmp_path / "data"))
    with _gateway(any(b.gateway for b in group)) as emu:
        env = dict(base)
        # Offline: without a key, the Agents SDK's own exporter (docs/agents.md) never calls out.
        env.pop("OPENAI_API_KEY", None)
        if emu is not None:
            env.update(ALEPHANT_GATEWAY_URL=emu.url, ALEPHANT_VIRTUAL_KEY="sk-readme-test")
        out = "".join(_run(b, tmp_path, env, emu) for b in group)
    if emu is not None:
        # Every README call to the gateway is made in a session: the headers went out, as the
        # emulator printed them.
        assert emu.lines, "the gateway blocks sent nothing to the emulator"
        assert all("alephant-session-id=" in line for line in emu.lines), emu.lines
    for needle in EXPECT.get(section, []):
        assert needle in out, out


def test_expectations_name_real_sections() -> None:
    assert set(EXPECT) <= set(_sections())
