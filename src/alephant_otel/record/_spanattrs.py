"""Attributes this package has already validated, written without the SDK cleaning them again.

``Span.set_attributes`` runs every value through ``_clean_attribute_value``
(type checks, list-to-tuple copies, a length limit) and takes two locks; for
the ~25 attributes a gateway request carries that was ~0.6 µs each, a fifth
of what this package added per request. Every value written here is already
a ``str``, ``bool``, ``int``, ``float`` or a tuple of ``str``, so cleaning
them cannot change them.

The fast path writes into the SDK span's ``BoundedAttributes`` (and, for a
rename, its ``_name``) under the span's lock, which is private layout. It is
taken only for span classes whose behaviour matched, once per class, in a
probe on a throwaway provider, and only when no limit could apply (no ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``,
room under ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, span not ended); anything else
goes through the public API, with its warnings and limits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Span, Status
from opentelemetry.util.types import AttributeValue

from alephant_otel import _fastpaths

__all__ = ["attributes_of", "ended_parts", "set_clean", "starting_dict"]

_log = logging.getLogger(__name__)


def _probe() -> type | None:
    """The SDK's span class, if its spans keep attributes the way :func:`set_clean` writes them."""
    try:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        ended: list[ReadableSpan] = []

        class _Keep(SpanProcessor):
            def on_end(self, span: ReadableSpan) -> None:
                ended.append(span)

        # Explicit sampler and resource: the environment's (a ratio sampler, resource
        # detectors) must neither skip the probe's span nor slow it down.
        provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False)
        provider.add_span_processor(_Keep())
        span: Any = provider.get_tracer(__name__).start_span("probe", attributes={"a": "1"})
        attrs = span._attributes
        if type(attrs) is not BoundedAttributes or type(attrs._dict) is not dict:
            return None
        with span._lock:
            if span._end_time is not None or span._name != "probe":
                return None
            attrs._dict.update({"b": 2, "c": ("x",)})
            span._name = "renamed"
        span.end()
        ok = (
            dict(span.attributes) == {"a": "1", "b": 2, "c": ("x",)}
            and span.dropped_attributes == 0
            and span.name == "renamed"
            and len(ended) == 1
            and dict(ended[0].attributes or {}) == {"a": "1", "b": 2, "c": ("x",)}
            and ended[0].name == "renamed"
        )
        provider.shutdown()
        return type(span) if ok else None
    except Exception:
        _log.debug("alephant_otel: span attribute probe failed; using the public API", exc_info=True)
        return None


class _Probed(dict[type, bool]):
    """Span class -> whether the fast path applies; probed on first sight (a hit costs a dict lookup)."""

    def __missing__(self, cls: type) -> bool:
        from opentelemetry.sdk.trace import Span as SdkSpan

        ok = _fastpaths.ENABLED and issubclass(cls, SdkSpan) and _probe() is cls
        self[cls] = ok
        return ok


_direct = _Probed()


def _fits(attrs: Any, live: dict[str, Any], adding: int) -> bool:
    """Whether no SDK limit could touch ``adding`` more attributes: no value length limit, room under the count."""
    return attrs.max_value_len is None and (attrs.maxlen is None or len(live) + adding <= attrs.maxlen)


def set_clean(span: Span, attributes: Mapping[str, AttributeValue], name: str | None = None) -> None:
    """Set already-valid ``attributes`` on ``span``, and rename it to ``name`` when given.

    The public API (``set_attributes``, ``update_name``) when the fast path
    can't apply. The rename rides along under the same lock: ``update_name``
    is a decorator packing its arguments and the span lock taken again
    (~3.5 k instructions per request).
    """
    if _direct[type(span)]:
        target: Any = span
        attrs = target._attributes
        # _fits, inlined: this runs for every request span, twice.
        maxlen = attrs.maxlen
        if (
            not attrs._immutable
            and attrs.max_value_len is None
            and (maxlen is None or len(attrs._dict) + len(attributes) <= maxlen)
        ):
            with target._lock:
                if target._end_time is None:
                    attrs._dict.update(attributes)
                    if name is not None:
                        target._name = name
                    return
    span.set_attributes(attributes)
    if name is not None:
        span.update_name(name)


def attributes_of(span: Span) -> Mapping[str, Any]:
    """The span's current attributes, read-only by convention (no copy, no proxy)."""
    if _direct[type(span)]:
        result: Mapping[str, Any] = span._attributes._dict  # type: ignore[attr-defined]
        return result
    return getattr(span, "attributes", None) or {}


#: The ``ReadableSpan`` properties :func:`ended_parts` reads around: a class that
#: overrides one of them may mean something else by it.
_READABLE_PROPERTIES: Final = ("name", "attributes", "events", "status")


def _reads_own(cls: type) -> bool:
    return _fastpaths.ENABLED and all(
        getattr(cls, prop, None) is ReadableSpan.__dict__.get(prop) for prop in _READABLE_PROPERTIES
    )


class _ReadsOwn(dict[type, bool]):
    """Span class -> whether it keeps the SDK's ``ReadableSpan`` properties (a hit costs a dict lookup)."""

    def __missing__(self, cls: type) -> bool:
        ok = self[cls] = _reads_own(cls)
        return ok


_reads_own_of = _ReadsOwn()


def ended_parts(span: ReadableSpan) -> tuple[str, Mapping[str, Any] | None, Sequence[Event], str | None]:
    """What an exporter reads of an ended span's text: (name, attributes, events, status description).

    Every span passes here on its way to an exporter (the scrubber), so it
    reads the SDK's fields where it can vouch for them rather than through
    the public properties: ``attributes`` is a ``MappingProxyType`` over
    ``BoundedAttributes``, whose values are read through the ``Mapping``
    mixins (a Python call per value, ~24 k instructions for a gateway request
    span), and ``events``, ``name`` and ``status.description`` are a call or
    three each. Once a span has ended nothing writes to those fields, so they
    cannot change under the reader. Taken only for span classes that keep the
    SDK's properties, and for the SDK's exact types inside (checked on each
    call); the public properties otherwise, and with the other fast paths off.
    """
    if _reads_own_of[type(span)]:
        own: Any = span  # the SDK's fields, vouched for by the class check above
        attrs: Any = own._attributes
        if type(attrs) is BoundedAttributes:
            attrs = attrs._dict
        status: Any = own._status
        if (type(attrs) is dict or attrs is None) and type(status) is Status:
            events: Any = own._events
            if type(events) is BoundedList:
                bounded: Any = events
                events = bounded._dq
            return own._name, attrs, events, status._description
    return span.name, span.attributes, span.events, span.status.description


def starting_dict(span: Span, adding: int) -> dict[str, Any] | None:
    """The attribute dict of a span inside ``SpanProcessor.on_start``, to update in place, or None.

    The SDK calls ``on_start`` from ``start()``, before the span is returned to
    anyone: no other thread can hold it and it cannot have ended, so neither
    the span lock nor the end check is needed (this runs for every span).
    None when the public API must be used: not a vetted SDK span, a value
    length limit, or no room for ``adding`` more attributes.
    """
    if _direct[type(span)]:
        attrs: Any = span._attributes  # type: ignore[attr-defined]
        live: dict[str, Any] = attrs._dict
        if _fits(attrs, live, adding):
            return live
    return None
