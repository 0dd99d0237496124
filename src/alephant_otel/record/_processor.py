"""The span processor: alephant ids on every span started in a session.

Like ``opentelemetry-processor-baggage``'s ``BaggageSpanProcessor``, but only
for the alephant keys, validated (an invalid inbound value never becomes an
attribute), with the GenAI aliases (``gen_ai.conversation.id``,
``gen_ai.agent.id``), and with the attribute dict derived once per set of ids
rather than per span.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from alephant_otel.context import _state
from alephant_otel.context._scope import end_open_requests
from alephant_otel.context._state import active_state
from alephant_otel.record._content import adopt as adopt_content
from alephant_otel.record._content import pending as pending_content
from alephant_otel.record._spanattrs import starting_dict
from alephant_otel.redact._scrub import redact_url

__all__ = ["AlephantSpanProcessor", "add_span_sink", "redact_url", "remove_span_sink"]

_log = logging.getLogger(__name__)

SpanSink = Callable[[ReadableSpan], None]
# Test helpers (the ``alephant_gateway`` fixture) that see every span ending on any provider
# this processor is on: the global one or one the code under test made, whichever it uses.
# Empty outside tests, so ``on_end`` costs one truth test.
_sinks: tuple[SpanSink, ...] = ()


def add_span_sink(sink: SpanSink) -> None:
    """Hand every span that ends on a provider with this processor to ``sink`` too."""
    global _sinks  # noqa: PLW0603 - a tuple, swapped whole
    _sinks = (*_sinks, sink)


def remove_span_sink(sink: SpanSink) -> None:
    """Undo :func:`add_span_sink`."""
    global _sinks  # noqa: PLW0603
    _sinks = tuple(s for s in _sinks if s is not sink)


class AlephantSpanProcessor(SpanProcessor):
    """Stamps the active session/run ids on every span as it starts.

    ``configure()`` and the ``opentelemetry-instrument`` entry point add it for
    you. Add it yourself when you build the tracer provider by hand:

    Examples:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from alephant_otel import AlephantSpanProcessor
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(AlephantSpanProcessor())

    Credentials are not its job: ``configure()`` and the instrumentor put a
    scrubbing step in front of every exporter on the provider (see
    ``_scrubexport``), which runs at export time, off the request's thread.
    Its :meth:`shutdown` (it runs first among the provider's processors) ends
    the requests whose response is still being read, so their spans are
    exported, marked incomplete, before the exporters shut down.

    Request-level data (usage, cost, retries, policy events) is added by the
    httpx hooks before the request span ends, and roll-ups by the session and
    run scopes before theirs end, so that every exporter sees the final span.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy the alephant ids from the parent context's baggage onto ``span``."""
        try:
            state = active_state(parent_context)
            _state.started = (span, state)
            attrs = state.span_attributes
            if attrs:
                live = starting_dict(span, len(attrs))
                if live is not None:
                    live.update(attrs)
                else:
                    span.set_attributes(attrs)
        except Exception:  # pragma: no cover - active_state does not raise on any input seen so far
            _log.debug("alephant_otel: on_start failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        """Spans are complete before they end: only test helpers' sinks see them here."""
        if pending_content:  # empty unless content capture is on
            adopt_content(span)
        sinks = _sinks
        for sink in sinks:
            try:
                sink(span)
            except Exception:  # pragma: no cover - the fixture's sink only appends
                _log.debug("alephant_otel: span sink failed", exc_info=True)

    def shutdown(self) -> None:
        """End the requests still reading a response (the process is exiting), so they are exported."""
        end_open_requests()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True
