"""Attributes this package has already validated, written without the SDK cleaning them again.

``Span.set_attributes`` runs every value through ``_clean_attribute_value``
(type checks, list-to-tuple copies, a length limit) and takes two locks; for
the ~25 attributes a gateway request carries that was ~0.6 µs each, a fifth
of what this package added per request. Every value written here is already
a ``str``, ``bool``, ``int``, ``float`` or a tuple of ``str``, so cleaning
them cannot change them.

The fast path writes into the SDK span's ``BoundedAttributes`` under the
span's lock, which is private layout. It is taken only for span classes whose
behaviour matched, once per class, in a probe on a throwaway provider, and
only when no limit could apply (no ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``,
room under ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, span not ended); anything else
goes through the public API, with its warnings and limits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from alephant_otel import _fastpaths

__all__ = ["attributes_of", "set_clean", "starting_dict"]

_log = logging.getLogger(__name__)


def _probe() -> type | None:
    """The SDK's span class, if its spans keep attributes the way :func:`set_clean` writes them."""
    try:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
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
            if span._end_time is not None:
                return None
            attrs._dict.update({"b": 2, "c": ("x",)})
        span.end()
        ok = (
            dict(span.attributes) == {"a": "1", "b": 2, "c": ("x",)}
            and span.dropped_attributes == 0
            and len(ended) == 1
            and dict(ended[0].attributes or {}) == {"a": "1", "b": 2, "c": ("x",)}
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


def set_clean(span: Span, attributes: Mapping[str, AttributeValue]) -> None:
    """Set already-valid ``attributes`` on ``span`` (the public API when the fast path can't apply)."""
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
                    return
    span.set_attributes(attributes)


def attributes_of(span: Span) -> Mapping[str, Any]:
    """The span's current attributes, read-only by convention (no copy, no proxy)."""
    if _direct[type(span)]:
        result: Mapping[str, Any] = span._attributes._dict  # type: ignore[attr-defined]
        return result
    return getattr(span, "attributes", None) or {}


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
