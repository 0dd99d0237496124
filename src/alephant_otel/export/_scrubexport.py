"""The scrubbing step between a tracer provider and every exporter on it.

``configure()`` (and the instrumentor) guard the SDK tracer provider: each
span processor on it, those added before and those added after, gets its spans
through :func:`scrub_span`, so whatever exporter the user configured (OTLP,
the trace file, a console or in-memory exporter, a processor of their own)
only ever sees scrubbed spans.

Where the work happens matters: a ``BatchSpanProcessor`` gets its *exporter*
wrapped, so scrubbing runs in the batch thread at export time, never on the
thread that ended the span. A ``SimpleSpanProcessor`` exports on the ending
thread anyway; its exporter is wrapped too. Any other processor is wrapped
whole (its ``on_end`` gets the scrubbed copy). A span that needs no scrubbing
(nearly all) is passed on as the very same object; one that does is passed as a
new ``ReadableSpan``, built with the public constructor, so the span the
application holds and what other processors see are never mutated.

Scrubbed: the span name, attribute values, status description, event names and
attributes, link attributes and the resource's attributes (a resource is shared
by every span of a provider: each one is scrubbed once and remembered).

Reaching the processors of a provider uses its private
``_active_span_processor._span_processors`` tuple (and the batch processor's
``_batch_processor._exporter``); both are checked by shape before use, and
where the shape differs the processor is wrapped whole instead.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from alephant_otel.record._content import keep_json, kept_any, with_content
from alephant_otel.record._spanattrs import _reads_own_of, ended_parts
from alephant_otel.redact._scrub import scrub_attributes, scrub_named, scrub_text

__all__ = [
    "ScrubbingSpanExporter",
    "ScrubbingSpanProcessor",
    "guard_provider",
    "scrub_span",
    "scrub_spans",
    "scrubbed_resource",
]

_log = logging.getLogger(__name__)
_guarded: weakref.WeakSet[SdkTracerProvider] = weakref.WeakSet()
#: id(resource) -> (resource, its scrubbed copy or itself): a provider's spans share one resource.
_resources: dict[int, tuple[Resource, Resource]] = {}
_RESOURCES_KEEP = 64
#: The resource seen last and its scrubbed copy: nearly every span has the one of its provider.
_last_resource: tuple[Resource | None, Resource | None] = (None, None)


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """``span``, or a copy of it with the credentials in its strings scrubbed. Never raises."""
    try:
        return _scrub(span)
    except Exception:
        _log.warning("alephant_otel: a span could not be scrubbed and is dropped", exc_info=True)
        return _dropped(span)


def _scrub(span: ReadableSpan) -> ReadableSpan:
    name, attributes, events, description = ended_parts(span)
    # Captured content (opt-in) is built here, in the exporter's thread, and scrubbed below.
    added = with_content(span, attributes, events) if kept_any else None
    if added is not None:
        attributes, events = added
    new_name, attrs = scrub_named(name, attributes)
    if added is not None and attrs is not None:
        keep_json(attributes or {}, attrs)  # the content is valid JSON after scrubbing
    new_events: list[Event] | None = None
    if events:
        for i, event in enumerate(events):
            new = scrub_attributes(event.attributes)
            if added is not None and new is not None:
                keep_json(event.attributes or {}, new)
            event_name = scrub_text(event.name)
            if new is not None or event_name != event.name:
                if new_events is None:
                    new_events = list(events)
                new_events[i] = Event(event_name, new if new is not None else event.attributes, event.timestamp)
    new_description = scrub_text(description) if description else description
    links: Any
    if _reads_own_of[type(span)]:
        # The SDK's fields, as ended_parts reads them: the properties copy the links into a new tuple.
        own: Any = span
        links, resource = own._links, own._resource
    else:
        links, resource = span.links, span.resource
    new_links = _scrubbed_links(links) if links else None
    last = _last_resource
    new_resource = last[1] if last[0] is resource else scrubbed_resource(resource)
    if (
        attrs is None
        and new_events is None
        and new_description == description
        and new_name == name
        and new_links is None
        and new_resource is resource
        and added is None
    ):
        return span
    bounded: Any = attrs
    if attrs is not None and span.dropped_attributes:
        # Only to carry the dropped count: building one re-validates every value.
        bounded = BoundedAttributes(maxlen=None, attributes=attrs, immutable=True, max_value_len=None)
        bounded.dropped = span.dropped_attributes
    status = span.status
    return ReadableSpan(
        name=new_name,
        context=span.context,
        parent=span.parent,
        resource=new_resource,
        attributes=bounded if bounded is not None else (span.attributes if added is None else attributes),
        events=new_events if new_events is not None else (span.events if added is None else events),
        links=new_links if new_links is not None else links,
        kind=span.kind,
        status=Status(status.status_code, new_description) if new_description != description else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbed_links(links: Sequence[Link]) -> list[Link] | None:
    """``links`` with their attributes scrubbed, or None when none needed it."""
    out: list[Link] | None = None
    for i, link in enumerate(links):
        new = scrub_attributes(link.attributes)
        if new is not None:
            if out is None:
                out = list(links)
            out[i] = Link(link.context, new)
    return out


def scrubbed_resource(resource: Resource) -> Resource:
    """``resource``, or a copy with its attribute values scrubbed (``process.command_line`` may hold one)."""
    global _last_resource  # noqa: PLW0603 - a one-entry memo, replaced whole
    known = _resources.get(id(resource))
    if known is not None and known[0] is resource:
        scrubbed = known[1]
    else:
        new = scrub_attributes(resource.attributes)
        scrubbed = resource if new is None else Resource(new, resource.schema_url)
        if len(_resources) >= _RESOURCES_KEEP:
            _resources.clear()
        _resources[id(resource)] = (resource, scrubbed)
    _last_resource = (resource, scrubbed)
    return scrubbed


def _dropped(span: ReadableSpan) -> ReadableSpan:
    # Only the identity and timing: nothing that could hold a credential.
    try:
        resource = scrubbed_resource(span.resource)
    except Exception:
        resource = Resource.get_empty()
    return ReadableSpan(
        name="[Scrubbed: span could not be scrubbed]",
        context=span.context,
        parent=span.parent,
        resource=resource,
        kind=span.kind,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def scrub_spans(spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
    """Each of ``spans`` scrubbed (the same sequence when none needed it)."""
    out: list[ReadableSpan] | None = None
    for i, span in enumerate(spans):
        try:
            new = _scrub(span)
        except Exception:
            _log.warning("alephant_otel: a span could not be scrubbed and is dropped", exc_info=True)
            new = _dropped(span)
        if new is not span:
            if out is None:
                out = list(spans)
            out[i] = new
    return spans if out is None else out


class ScrubbingSpanExporter(SpanExporter):
    """An exporter that scrubs each batch, then hands it to ``exporter``."""

    def __init__(self, exporter: SpanExporter) -> None:
        """Wrap ``exporter``."""
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub ``spans`` and export them with the wrapped exporter."""
        return self.exporter.export(scrub_spans(spans))

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.exporter.force_flush(timeout_millis)

    def __getattr__(self, name: str) -> Any:
        # Anything else (``path`` of a trace file exporter, an OTLP exporter's
        # ``_endpoint``) is the wrapped exporter's.
        return getattr(self.__dict__["exporter"], name)


class ScrubbingSpanProcessor(SpanProcessor):
    """A processor whose ``on_end`` gets scrubbed spans: for processors whose exporter cannot be reached."""

    def __init__(self, processor: SpanProcessor) -> None:
        """Wrap ``processor``."""
        self.processor = processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Pass the start on."""
        self.processor.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        ending = getattr(self.processor, "_on_ending", None)
        if ending is not None:
            ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        """Pass a scrubbed span on."""
        self.processor.on_end(scrub_span(span))

    def shutdown(self) -> None:
        """Shut the wrapped processor down."""
        self.processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped processor."""
        return self.processor.force_flush(timeout_millis)


def _guarded_processor(processor: SpanProcessor) -> SpanProcessor:
    """``processor`` with its spans scrubbed before they reach any exporter."""
    from alephant_otel.record._processor import AlephantSpanProcessor

    if isinstance(processor, (AlephantSpanProcessor, ScrubbingSpanProcessor)):
        return processor
    if type(processor) is SimpleSpanProcessor:
        if not isinstance(processor.span_exporter, ScrubbingSpanExporter):
            processor.span_exporter = ScrubbingSpanExporter(processor.span_exporter)
        return processor
    if type(processor) is BatchSpanProcessor:
        inner: Any = getattr(processor, "_batch_processor", None)
        exporter = getattr(inner, "_exporter", None)
        # Duck-typed like the SDK's own call (``self._exporter.export(batch)``): an
        # exporter need not subclass ``SpanExporter`` to be wrapped in place.
        if exporter is not None and callable(getattr(exporter, "export", None)) and processor.span_exporter is exporter:
            if not isinstance(exporter, ScrubbingSpanExporter):
                inner._exporter = ScrubbingSpanExporter(exporter)
            return processor
    return ScrubbingSpanProcessor(processor)


def guard_provider(provider: SdkTracerProvider, ours: SpanProcessor) -> None:
    """Scrub every span ``provider`` exports, now and for processors added later; ``ours`` goes first.

    First, because its ``shutdown`` ends the requests still open at exit,
    whose spans must still reach the batch processors after it. Never raises.
    """
    try:
        multi: Any = getattr(provider, "_active_span_processor", None)
        processors = getattr(multi, "_span_processors", None)
        lock = getattr(multi, "_lock", None)
        if type(processors) is not tuple or lock is None:
            _log.warning(
                "alephant_otel: this tracer provider's span processors cannot be reached; spans are scrubbed "
                "only for exporters configure() adds"
            )
            provider.add_span_processor(ours)
            return
        with lock:
            others = tuple(_guarded_processor(p) for p in multi._span_processors if p is not ours)
            multi._span_processors = (ours, *others)
        if provider in _guarded:
            return
        _guarded.add(provider)
        add = provider.add_span_processor

        def add_span_processor(span_processor: SpanProcessor) -> None:
            add(_guarded_processor(span_processor))

        provider.add_span_processor = add_span_processor  # type: ignore[method-assign]
    except Exception:
        _log.warning("alephant_otel: could not guard the tracer provider's exporters", exc_info=True)
