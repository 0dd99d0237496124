"""The attribute fast path: the same spans as the public API, limits and all, or the public API itself."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, SpanContext, TraceFlags

from alephant_otel import AlephantSpanProcessor, session
from alephant_otel.record._spanattrs import _direct, attributes_of, set_clean

ATTRS: dict[str, Any] = {
    "alephant.session.id": "sess_0123456789",
    "gen_ai.usage.input_tokens": 12,
    "alephant.cost.usd": 0.25,
    "alephant.response.streaming": True,
    "gen_ai.response.finish_reasons": ("stop", "length"),
}


def finished(limits: SpanLimits | None, write: Any, base: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits) if limits is not None else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("s", attributes=base or {"http.request.method": "POST"})
    write(span, ATTRS)
    span.end()
    (out,) = exporter.get_finished_spans()
    return dict(out.attributes or {}), out.dropped_attributes


def test_sdk_spans_take_the_fast_path() -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("s")
    # If an SDK release changes its span layout, this fails here rather than the
    # package silently falling back (correct, but slower than the README says).
    assert _direct[type(span)] is True
    set_clean(span, {"k": "v"})
    assert attributes_of(span)["k"] == "v"


@pytest.mark.parametrize(
    "limits",
    [
        None,
        SpanLimits(max_attribute_length=4),  # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
        SpanLimits(max_span_attributes=3),  # OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT
        SpanLimits(max_span_attributes=6),  # room for some only
    ],
    ids=["defaults", "value-length-limit", "count-limit", "count-limit-partial"],
)
def test_same_span_as_the_public_api(limits: SpanLimits | None) -> None:
    public = finished(limits, lambda span, attrs: span.set_attributes(attrs))
    fast = finished(limits, set_clean)
    assert fast == public
    if limits is None:
        assert fast[0] == {"http.request.method": "POST", **ATTRS} and fast[1] == 0


def test_ended_span_is_left_alone_with_the_sdk_warning(caplog: pytest.LogCaptureFixture) -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("s")
    span.end()
    with caplog.at_level(logging.WARNING):
        set_clean(span, {"late": "x"})
    assert "late" not in (span.attributes or {})
    assert any("ended span" in r.getMessage() for r in caplog.records)


def test_other_spans_use_the_public_api() -> None:
    set_clean(INVALID_SPAN, ATTRS)  # non-recording: a no-op, no error
    assert attributes_of(INVALID_SPAN) == {}

    class MySpan(SdkSpan):
        pass

    ctx = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    mine = MySpan("s", ctx)
    mine.start()
    assert _direct[MySpan] is False  # not the class the probe vetted
    set_clean(mine, {"k": "v"})
    assert mine.attributes == {"k": "v"}


def test_processor_respects_the_value_length_limit() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_attribute_length=6))
    provider.add_span_processor(AlephantSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with session("sess_0123456789"):
        provider.get_tracer("t").start_span("child").end()
    (child,) = exporter.get_finished_spans()
    assert child.attributes is not None
    assert child.attributes["alephant.session.id"] == "sess_0"
