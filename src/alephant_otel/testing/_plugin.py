"""pytest plugin (entry point ``pytest11``): the ``alephant_gateway`` fixture.

Installing alephant-otel makes the fixture available in any test suite:

.. code-block:: python

    def test_agent_sends_session(alephant_gateway):
        client = openai.OpenAI(base_url=alephant_gateway.openai_base_url, api_key="test")
        with alephant_otel.session("sess_1"):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=[...])
        assert alephant_gateway.requests[0].headers["alephant-session-id"] == "sess_1"
        assert alephant_gateway.spans[0].attributes["alephant.session.id"] == "sess_1"

The emulator is a gateway for the test whatever the code under test
configures: ``configure()`` with the default gateway URL, with
``ALEPHANT_GATEWAY_URL`` from its environment, or with a provider of its own
(``configure(tracer_provider=...)``, ``AlephantInstrumentor().instrument(...)``).
``.spans`` holds the spans that ended during the test on whichever provider
the code used.

The plugin module is imported by pytest only; ``import alephant_otel`` never
loads it or the emulator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from alephant_otel.record._processor import add_span_sink, remove_span_sink
from alephant_otel.setup._setup import hook_for_tests
from alephant_otel.testing._emulator import GatewayEmulator, RecordedRequest
from alephant_otel.wire._gateway import add_extra_gateway, remove_extra_gateway

__all__ = ["AlephantGateway", "alephant_gateway"]

_lock = threading.Lock()


def _sdk_provider() -> TracerProvider:
    """The global SDK provider, created (with no exporter) if the app has none yet."""
    with _lock:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        return provider


@dataclass
class _Captured:
    """Spans handed over by the span processor, each once.

    A provider given the processor twice (by hand and by ``configure()``)
    would otherwise show its spans twice.
    """

    spans: list[ReadableSpan] = field(default_factory=list)
    _seen: set[tuple[int, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        key = (ctx.trace_id, ctx.span_id) if ctx is not None else (0, id(span))
        with self._lock:
            if key not in self._seen:
                self._seen.add(key)
                self.spans.append(span)


@dataclass
class AlephantGateway:
    """What a test sees of its gateway emulator."""

    emulator: GatewayEmulator
    _captured: _Captured

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
        """Spans that ended during this test, in order, on any provider alephant_otel is set up on."""
        with self._captured._lock:
            return list(self._captured.spans)

    @property
    def request_spans(self) -> list[ReadableSpan]:
        """Only the gateway request spans (``alephant.span.kind == "request"``)."""
        return [s for s in self.spans if (s.attributes or {}).get("alephant.span.kind") == "request"]


@pytest.fixture
def alephant_gateway() -> Iterator[AlephantGateway]:
    """Start a gateway emulator on loopback, make it a gateway for this test, and record spans.

    The emulator is a gateway in addition to the configured ones until the
    test ends, whatever the code under test configures meanwhile. If nothing
    has set alephant_otel up yet, the httpx/httpx2 hooks are set up on the
    global provider (one with no exporter is made if the app has none), with
    the settings of the environment; the code under test may still call
    ``configure()`` or ``AlephantInstrumentor().instrument()`` itself.
    """
    captured = _Captured()
    with GatewayEmulator() as emulator:
        extra = add_extra_gateway(emulator.url)
        add_span_sink(captured)
        try:
            hook_for_tests(_sdk_provider())
            yield AlephantGateway(emulator, captured)
        finally:
            remove_span_sink(captured)
            remove_extra_gateway(extra)
