"""pytest plugin (entry point ``pytest11``): the ``alephant_gateway`` fixture.

Installing alephant-otel makes the fixture available in any test suite:

.. code-block:: python

    def test_agent_sends_session(alephant_gateway):
        client = openai.OpenAI(base_url=alephant_gateway.openai_base_url, api_key="test")
        with alephant_otel.session("sess_1"):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=[...])
        assert alephant_gateway.requests[0].headers["alephant-session-id"] == "sess_1"
        assert alephant_gateway.spans[0].attributes["alephant.session.id"] == "sess_1"

The plugin module is imported by pytest only; ``import alephant_otel`` never
loads it or the emulator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel._setup import configure
from alephant_otel.testing._emulator import GatewayEmulator, RecordedRequest

__all__ = ["AlephantGateway", "alephant_gateway"]

_lock = threading.Lock()
_exporters: dict[int, InMemorySpanExporter] = {}


def _span_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    """The SDK provider in use (created if the app has none) with one in-memory exporter attached."""
    with _lock:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        exporter = _exporters.get(id(provider))
        if exporter is None:
            exporter = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            _exporters[id(provider)] = exporter
        return provider, exporter


@dataclass
class AlephantGateway:
    """What a test sees of its gateway emulator."""

    emulator: GatewayEmulator
    _exporter: InMemorySpanExporter

    @property
    def url(self) -> str:
        """The emulator's base URL (``http://127.0.0.1:PORT``)."""
        return self.emulator.url

    @property
    def openai_base_url(self) -> str:
        """``url + "/v1"``, for ``openai.OpenAI(base_url=...)``."""
        return self.emulator.openai_base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests the emulator received during this test, in order."""
        return self.emulator.requests

    @property
    def spans(self) -> list[ReadableSpan]:
        """Spans that ended during this test, in order."""
        return list(self._exporter.get_finished_spans())

    @property
    def request_spans(self) -> list[ReadableSpan]:
        """Only the gateway request spans (``alephant.span.kind == "request"``)."""
        return [s for s in self.spans if (s.attributes or {}).get("alephant.span.kind") == "request"]


@pytest.fixture
def alephant_gateway() -> Iterator[AlephantGateway]:
    """Start a gateway emulator on loopback, route alephant headers to it, and record spans.

    The emulator is configured as the only gateway for the test (``configure(gateway_url=...)``)
    and the httpx/httpx2 instrumentation is set up if it was not.
    """
    provider, exporter = _span_exporter()
    exporter.clear()
    with GatewayEmulator() as emulator:
        configure(gateway_url=emulator.url, tracer_provider=provider)
        yield AlephantGateway(emulator, exporter)
    exporter.clear()
