"""Shared fixtures: one real SDK pipeline for the whole run, real loopback servers per test.

The tracer provider is process-global in OpenTelemetry and cannot be replaced,
so one provider with an in-memory exporter serves every test; each test
clears the exporter and points ``configure()`` at its own emulator.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _util import ROOT
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel.testing import GatewayEmulator

# pytest-xdist hands its workers the controller's terminal width as COLUMNS (80 when piped).
# The CLI honours COLUMNS when piped, so under xdist every table would be 80 columns wide while
# a plain `pytest` run sees 200: a worker starts as a plain pytest process would.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


#: A test whose xdist_group pytest-xdist ignored (see pytest_collection_modifyitems).
_UNGROUPED = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own, which marks the grouped node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (scripts/test.sh): the longest tests first, Phoenix last.

    Workers take tests in this order, so the slow-marked sets (tens of seconds
    each) start at once on both cores and the short tests fill the gaps at the
    end, instead of one slow test running alone at the end. The Phoenix module
    goes last: under .ci/run it waits for the install that runs in the
    background. A run without xdist keeps the files' order.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    # --dist loadgroup keeps a group on one worker by a suffix on the node id. When a pytest
    # release stops that from taking (pytest-dev/pytest-xdist#1386), every group is split
    # silently and its shared fixture (a Phoenix server) is set up once per worker: the
    # grouped tests fail instead, saying why (an error raised here would be an INTERNALERROR).
    if getattr(config.option, "loadgroup", False):
        for item in items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
                item.stash[_UNGROUPED] = True

    def rank(item: pytest.Item) -> int:
        if item.path.name in ("test_phoenix.py", "test_clickhouse.py"):  # wait for a background install
            return 2
        return 0 if item.get_closest_marker("slow") is not None else 1

    items.sort(key=rank)  # stable: the files' order within each rank


def pytest_collection_finish(session: pytest.Session) -> None:
    """Exempt what exists once the tests are collected (modules, strategies) from every collection.

    ``_collect_garbage_after_each_test`` runs a full collection after each of
    some 600 tests; with the SDKs, hypothesis and OpenTelemetry imported that
    walks a quarter of a million objects each time (0.1-0.2 s, more on a busy
    machine). Frozen, they are skipped: the collector walks only what the tests
    made since, which is where a test's leaked cycle lives.
    """
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures (a Phoenix server) are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fails a test whose ``xdist_group`` pytest-xdist ignored (see pytest_collection_modifyitems)."""
    if item.stash.get(_UNGROUPED, False):
        pytest.fail(
            "pytest-xdist's --dist loadgroup did not keep this test's xdist_group on one worker "
            "(pytest-dev/pytest-xdist#1386, with pytest 9.2): install the pytest version pyproject.toml pins",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _fresh_warnings_and_caches() -> None:
    """Each test starts as a fresh process would: no key warned about yet, nothing derived."""
    from alephant_otel import _impossible
    from alephant_otel.context import _scope, _state
    from alephant_otel.setup import _hooking
    from alephant_otel.wire import _request

    _state._warned_keys.clear()
    _scope._warned_cross_exit = False
    _impossible._warned.clear()
    _request._misrouted_hosts.clear()
    _state.clear_cache()
    # Keyed by id(): a hook of an earlier test, freed, can leave its id to this test's hook.
    _hooking._misfit_warned.clear()


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Let a test that leaves an open socket in a reference cycle fail itself, not a later test.

    An SDK client caught in a cycle (an exception's traceback holds its frame)
    is freed whenever the collector next runs, which can be in any later test;
    its unclosed socket's ResourceWarning, an error under ``filterwarnings``,
    then fails that unrelated test. Collecting here pins it to the test at fault.
    """
    yield
    gc.collect()


@pytest.fixture
def report_line(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Show a line of figures (the fuzz counts the README quotes) even though output is captured.

    In one process it is printed at once. pytest-xdist does not show its
    workers' output: there the line travels with the test's report and the
    controller prints it in a "figures" section of the summary.
    """

    def emit(line: str) -> None:
        request.node.user_properties.append(("figures", line))
        if "PYTEST_XDIST_WORKER" not in os.environ:
            with capsys.disabled():
                print(f"\n{line}")

    return emit


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Under pytest-xdist: the lines ``report_line`` recorded on the workers."""
    if not config.pluginmanager.has_plugin("dsession"):
        return
    lines = [
        str(value)
        for key in ("passed", "failed")
        for report in terminalreporter.stats.get(key, [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "figures"
    ]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def tracer_provider() -> TracerProvider:
    """The process-wide SDK tracer provider the tests export from."""
    return _provider


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The in-memory exporter of the process-wide provider, cleared for this test."""
    _exporter.clear()
    yield _exporter
    _exporter.clear()


@pytest.fixture
def gateway(spans: InMemorySpanExporter) -> Iterator[GatewayEmulator]:
    """A gateway emulator on loopback, configured as the (only) gateway."""
    with GatewayEmulator() as gw:
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=_provider)
        yield gw


@pytest.fixture
def other_server() -> Iterator[GatewayEmulator]:
    """A second loopback server that is NOT the gateway."""
    with GatewayEmulator() as srv:
        yield srv


@pytest.fixture
def metrics(gateway: GatewayEmulator) -> Iterator[InMemoryMetricReader]:
    """The gateway fixture, with the package's metrics going to an in-memory reader."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=_provider, meter_provider=provider)
    yield reader
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=_provider)
    provider.shutdown()


@pytest.fixture(scope="session")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv with only ``pip install .``: what a newcomer has (no dev extras).

    Built once per run, not once per xdist worker: the workers share the parent of their base
    temporary directories, and a lock there lets the first one build while the others wait.
    ``$ALEPHANT_PLAIN_INSTALL`` names the bin directory of one built already (``.ci/run``
    builds it in the background, before the suite starts).
    """
    import fcntl

    ready = os.environ.get("ALEPHANT_PLAIN_INSTALL")
    if ready:
        prebuilt = Path(ready)
        assert (prebuilt / "alephant-otel").exists(), f"ALEPHANT_PLAIN_INSTALL={ready} has no alephant-otel"
        return prebuilt

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    venv = shared / "plain-install" / "venv"
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    done_marker = venv.parent / "installed"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done_marker.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
            done = subprocess.run(
                [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr[-2000:]
            done_marker.touch()
    return bin_dir
