"""How the scrubber reads an ended span.

The SDK's own fields where it can vouch for them, the public properties otherwise, and the same
verdict either way. An exporter need not subclass ``SpanExporter`` to be wrapped in place (scrubbing
then runs at export, in the batch thread). Ids of this package's own form are clean without the
hint search.

``tests/test_fast_paths_off.py`` runs this file again with every fast path off.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from alephant_otel import configure, session
from alephant_otel.context._ids import new_id
from alephant_otel.context._state import active_state, state_for
from alephant_otel.export._scrubexport import ScrubbingSpanExporter, scrub_span, scrub_spans
from alephant_otel.redact._scrub import scrub_text, set_extra_patterns


def _secret() -> str:
    return "s3cr3t" + uuid.uuid4().hex[:12]


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def _ended_span(secret: str) -> ReadableSpan:
    """An SDK span, ended, with ``secret`` in its name, an attribute, an event and its status."""
    provider = TracerProvider()
    keep = _Keep()
    provider.add_span_processor(keep)
    span = provider.get_tracer("t").start_span(f"GET /?api_key={secret}", attributes={"n": 3, "ok": "plain"})
    span.set_attribute("msg", f"Authorization: Bearer {secret}")
    span.add_event("exception", {"exception.message": f"token={secret}"})
    span.set_status(Status(StatusCode.ERROR, f"failed with password={secret}"))
    span.end()
    provider.shutdown()
    (ended,) = keep.ended
    return ended


class _OwnAttributes(ReadableSpan):
    """A span class whose ``attributes`` property is its own: the scrubber must read it, not the field."""

    def __init__(self, span: ReadableSpan, attributes: Mapping[str, Any]) -> None:
        super().__init__(
            name=span.name,
            context=span.context,
            attributes=dict(span.attributes or {}),
            events=span.events,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
        )
        self._shown = dict(attributes)

    @property
    def attributes(self) -> Mapping[str, Any]:  # type: ignore[override]
        return MappingProxyType(self._shown)


def _texts(span: ReadableSpan) -> tuple[str, dict[str, Any], list[dict[str, Any]], str | None]:
    return (
        span.name,
        dict(span.attributes or {}),
        [dict(e.attributes or {}) for e in span.events],
        span.status.description,
    )


def test_every_string_of_an_ended_sdk_span_is_scrubbed() -> None:
    secret = _secret()
    scrubbed = scrub_span(_ended_span(secret))
    name, attrs, events, description = _texts(scrubbed)
    assert secret not in repr(_texts(scrubbed))
    assert name == "GET /?api_key=REDACTED"
    assert attrs == {"n": 3, "ok": "plain", "msg": "Authorization: [Scrubbed due to 'authorization']"}
    assert events == [{"exception.message": "token=[Scrubbed due to 'token']"}]
    assert description == "failed with password=[Scrubbed due to 'password']"


def test_a_clean_span_is_passed_on_as_the_very_same_object() -> None:
    provider = TracerProvider()
    keep = _Keep()
    provider.add_span_processor(keep)
    provider.get_tracer("t").start_span("chat gpt-4o-mini", attributes={"n": 3, "id": new_id("req_")}).end()
    spans = tuple(keep.ended)
    assert scrub_span(spans[0]) is spans[0]
    assert scrub_spans(spans) is spans


def test_a_span_class_with_its_own_attributes_property_is_read_through_it() -> None:
    secret, shown = _secret(), _secret()
    span = _OwnAttributes(_ended_span(secret), {"shown": f"api_key={shown}"})
    scrubbed = scrub_span(span)
    assert dict(scrubbed.attributes or {}) == {"shown": "api_key=[Scrubbed due to 'api_key']"}
    # The rest is read through the public properties too, and scrubbed the same.
    assert scrubbed.name == "GET /?api_key=REDACTED"
    assert secret not in repr(_texts(scrubbed))


class _DuckExporter:
    """An exporter that does not subclass ``SpanExporter``: the batch processor only calls its methods."""

    def __init__(self) -> None:
        self.exported: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_a_duck_typed_exporter_is_wrapped_in_place_and_gets_scrubbed_spans(tracer_provider: TracerProvider) -> None:
    provider = TracerProvider()
    duck = _DuckExporter()
    batch = BatchSpanProcessor(duck)  # type: ignore[arg-type]
    provider.add_span_processor(batch)
    try:
        configure(tracer_provider=provider)
        # Wrapped in place: the batch processor stays the user's, its exporter scrubs.
        assert isinstance(batch.span_exporter, ScrubbingSpanExporter)
        secret = _secret()
        with session("sess_duck"), provider.get_tracer("t").start_as_current_span("work") as span:
            span.set_attribute("msg", f"client_secret={secret}")
        provider.force_flush()
        (work,) = [s for s in duck.exported if s.name == "work"]
        assert work.attributes is not None
        assert work.attributes["msg"] == "client_secret=[Scrubbed due to 'client_secret']"
    finally:
        provider.shutdown()
        configure(tracer_provider=tracer_provider)


@pytest.mark.parametrize("prefix", ["req_", "sess_", "run_"])
def test_ids_of_this_packages_form_pass_unchanged(prefix: str) -> None:
    value = new_id(prefix)
    assert scrub_text(value) == value
    assert scrub_text(f"{value} sk-{uuid.uuid4().hex}") == f"{value} [Scrubbed due to 'gateway key']"


def test_a_users_pattern_still_judges_id_shaped_values() -> None:
    value = new_id("run_")
    try:
        set_extra_patterns(env={"ALEPHANT_VIRTUAL_KEY": value})
        # The configured key has this package's id form: the id shortcut must not let it through.
        assert scrub_text(value) == "[Scrubbed due to 'configured key']"
    finally:
        set_extra_patterns(env={})
    assert scrub_text(value) == value


def test_the_request_hook_takes_the_state_of_its_spans_start_or_derives_it() -> None:
    with session("sess_started", name="started"):
        state = active_state()
        # A span the processor did not just start: the state is derived from the context.
        assert state_for(object()) is state
        assert state_for(object()).current.session_id == "sess_started"
