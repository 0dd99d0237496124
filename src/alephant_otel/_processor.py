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
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from alephant_otel._context import active_state
from alephant_otel._redact import redact_url
from alephant_otel._spanattrs import attributes_of, starting_dict

__all__ = ["AlephantSpanProcessor", "add_span_sink", "redact_url", "remove_span_sink"]

_log = logging.getLogger(__name__)

#: URL attributes the HTTP instrumentations set (old and new semconv).
_URL_KEYS: Final = ("http.url", "url.full", "url.query", "http.target")
#: Captured request headers (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST=".*"``)
#: that carry credentials, as the instrumentation names them; redacted even when the user did
#: not list them in ``..._SANITIZE_FIELDS``.
_SECRET_HEADER_KEYS: Final = tuple(
    "http.request.header." + h
    for h in ("authorization", "proxy_authorization", "x_api_key", "api_key", "cookie", "x_goog_api_key")
)
_REDACTED_HEADER: Final = ("[REDACTED]",)
_SECRET_HEADERS: Final = frozenset(_SECRET_HEADER_KEYS)
_WATCHED: Final = frozenset(_URL_KEYS + _SECRET_HEADER_KEYS)

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

    It also redacts credential-like query parameters (``api_key=``,
    ``key=``, ``token=``...) from the URL attributes HTTP instrumentations set,
    so a key passed in a query string never reaches an exporter, and the
    credential headers (``authorization``, ``x-api-key``, ``api-key``...)
    that ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` would
    record.

    Request-level data (usage, cost, retries, policy events) is added by the
    httpx hooks before the request span ends, and roll-ups by the session and
    run scopes before theirs end, so that every exporter sees the final span.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy the alephant ids from the parent context's baggage onto ``span``."""
        try:
            attrs = active_state(parent_context).span_attributes
            live = starting_dict(span, len(attrs))
            current = live if live is not None else attributes_of(span)
            # Redaction before the ids go on: fewer keys to look through, and the
            # ids never need it. Usually one watched key is present (the URL).
            if current:
                for key in _WATCHED.intersection(current):
                    value = current[key]
                    if key in _SECRET_HEADERS:
                        if value != _REDACTED_HEADER:
                            span.set_attribute(key, _REDACTED_HEADER)
                    elif isinstance(value, str) and "=" in value:
                        redacted = redact_url(value)
                        if redacted != value:
                            span.set_attribute(key, redacted)
            if attrs:
                if live is not None:
                    live.update(attrs)
                else:
                    span.set_attributes(attrs)
        except Exception:  # pragma: no cover - active_state does not raise on any input seen so far
            _log.debug("alephant_otel: on_start failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        """Spans are complete before they end: only test helpers' sinks see them here."""
        sinks = _sinks
        for sink in sinks:
            try:
                sink(span)
            except Exception:  # pragma: no cover - the fixture's sink only appends
                _log.debug("alephant_otel: span sink failed", exc_info=True)

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True
