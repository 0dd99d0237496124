"""Shared fixtures: one real SDK pipeline for the whole run, real loopback servers per test.

The tracer provider is process-global in OpenTelemetry and cannot be replaced,
so one provider with an in-memory exporter serves every test; each test
clears the exporter and points ``configure()`` at its own emulator.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
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

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@pytest.fixture(autouse=True)
def _fresh_warnings_and_caches() -> None:
    """Each test starts as a fresh process would: no key warned about yet, nothing derived."""
    from alephant_otel import _context, _hooks

    _context._warned_keys.clear()
    _hooks._misrouted_hosts.clear()
    _context.clear_cache()


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
    """The bin directory of a fresh venv with only ``pip install .``: what a newcomer has (no dev extras)."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(ROOT)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return bin_dir
