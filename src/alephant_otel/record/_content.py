"""Content capture, end to end: bodies kept on the span, messages built at export.

When capture is on, the response step (``wire._response``, when the body ends)
only hangs a :class:`Pending` on the request span: references to the request
body the hook already holds and to the response body the watcher kept. No
parsing, no JSON, nothing copied on the caller's thread. The messages are
built when the span is exported (:func:`with_content`, called by the scrubbing
step in the batch exporter's thread), once per span however many exporters
there are, and then scrubbed like every other value. With capture off nothing
is kept and the export step pays one module flag check.

What is written: ``gen_ai.system_instructions``, ``gen_ai.input.messages``
and ``gen_ai.output.messages`` as JSON strings (OpenTelemetry Python has no
structured attribute values), on the span (``SPAN_ONLY``/``true``) and/or as
the attributes of a ``gen_ai.client.inference.operation.details`` span event
(``EVENT_ONLY``/``SPAN_AND_EVENT``). Caps: see :mod:`._contentcap`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import Event, ReadableSpan

from alephant_otel import _names as n
from alephant_otel.record._contentcap import Capture, dumps, fit_messages
from alephant_otel.record._contentin import input_messages
from alephant_otel.record._contentout import output_messages
from alephant_otel.record._decode import decode_body
from alephant_otel.redact._scrub import scrub_attributes, scrub_text

__all__ = ["Pending", "adopt", "keep", "keep_json", "kept_any", "pending", "with_content"]

_log = logging.getLogger(__name__)
_ATTR: Final = "_alephant_content"
#: Set once content was first kept: until then the export step does not even look.
kept_any: list[bool] = []
#: Span id -> content of a request span that has not ended yet. The SDK hands processors
#: a new ReadableSpan at the end, so the span processor moves the content onto that
#: (:func:`adopt`), where every exporter finds it and it dies with the span.
pending: dict[int, Pending] = {}
#: A safeguard for pipelines without the span processor (nothing adopts): the oldest go.
_PENDING_KEEP: Final = 4096
_KEYS: Final = (n.GEN_AI_SYSTEM_INSTRUCTIONS, n.GEN_AI_INPUT_MESSAGES, n.GEN_AI_OUTPUT_MESSAGES)
_PART_VALUES: Final = ("content", "arguments", "response", "uri", "name")
_warned: list[bool] = []
_lock = threading.Lock()


class Pending:
    """What a request span's content will be built from, at export."""

    __slots__ = ("_built", "body", "capture", "content_type", "encoding", "path", "request_body", "status", "whole")

    def __init__(
        self,
        capture: Capture,
        request_body: bytes | None,
        body: bytes,
        whole: bool,
        content_type: str | None,
        encoding: str | None,
        path: str,
        status: int,
    ) -> None:
        self.capture = capture
        self.request_body = request_body
        self.body = body
        self.whole = whole
        self.content_type = content_type
        self.encoding = encoding
        self.path = path
        self.status = status
        self._built: dict[str, str] | None = None

    def attributes(self) -> dict[str, str]:
        """The content attributes (built on the first call; the bodies are let go then)."""
        built = self._built
        if built is None:
            with _lock:  # two exporters' threads: one builds, the other waits for it
                built = self._built
                if built is None:
                    built = self._built = self._build()
                    self.request_body = None
                    self.body = b""
        return built

    def _build(self) -> dict[str, str]:
        try:
            request = json.loads(self.request_body) if self.request_body else None
        except (ValueError, RecursionError):
            request = None
        system, inputs = input_messages(request, self.path)
        outputs: list[dict[str, Any]] = []
        if self.status < 400 and self.body and not self.path.split("?", 1)[0].rstrip("/").endswith("/embeddings"):
            data: bytes | None = self.body
            whole = self.whole
            if self.encoding and self.encoding.strip().lower() not in ("", "identity"):
                data, whole = decode_body(self.body, self.encoding, whole)
            if data:
                head = data[:64].lstrip()
                is_stream = "event-stream" in (self.content_type or "") or head.startswith((b"data:", b"event:"))
                outputs = output_messages(data, is_stream, whole)
        cap = self.capture
        # System instructions are a list of parts, not of messages: capped as one message.
        wrapped = [{"role": "system", "parts": system}] if system else []
        fit_messages([wrapped, inputs, outputs], cap.message_limit, cap.span_limit)
        for message in (*wrapped, *inputs, *outputs):
            _scrub_parts(message)
        attrs: dict[str, str] = {}
        if wrapped:
            attrs[n.GEN_AI_SYSTEM_INSTRUCTIONS] = dumps(wrapped[0]["parts"])
        if inputs:
            attrs[n.GEN_AI_INPUT_MESSAGES] = dumps(inputs)
        if outputs:
            attrs[n.GEN_AI_OUTPUT_MESSAGES] = dumps(outputs)
        return attrs


def _clean(value: Any) -> Any:
    """``value`` scrubbed leaf by leaf: a key that names a secret blanks its value, as on a span."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        flat = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, (str, int, float))}
        by_name = scrub_attributes(flat) or flat
        return {k: by_name[k] if k in by_name else _clean(v) for k, v in value.items()}
    return value


def _scrub_parts(message: dict[str, Any]) -> None:
    """Scrub each value of each part before the JSON is written.

    The export step scrubs the JSON text again, as every value; done here
    first, on the strings themselves, no replacement can eat a JSON escape
    (a value running into ``\\"``) and leave invalid JSON behind.
    """
    for part in message.get("parts") or ():
        if isinstance(part, dict):
            for key in _PART_VALUES:
                if key in part:
                    part[key] = _clean(part[key])


def keep_json(before: Mapping[str, Any], after: dict[str, Any]) -> None:
    """Undo the export step's rewrite of a content value that it left as invalid JSON.

    The value before it was scrubbed leaf by leaf (``_scrub_parts``) by the
    same scrubber; a rewrite of the JSON text that breaks it (rare: a pattern
    spanning an escape) is dropped for that one. Never raises.
    """
    for key in _KEYS:
        value = after.get(key)
        if value is None or value is before.get(key) or value == before.get(key):
            continue
        try:
            json.loads(value)
        except (ValueError, TypeError):
            after[key] = before[key]


def keep(
    span: Any,
    capture: Capture,
    request_body: bytes | None,
    body: bytes,
    whole: bool,
    content_type: str | None,
    encoding: str | None,
    path: str,
    status: int,
) -> None:
    """Hang what the content will be built from on ``span`` (the response step; cheap). Never raises."""
    try:
        if not span.is_recording():
            return
        if len(pending) >= _PENDING_KEEP:
            with contextlib.suppress(RuntimeError, StopIteration):  # another thread changed it meanwhile
                pending.pop(next(iter(pending)), None)
        pending[span.get_span_context().span_id] = Pending(
            capture, request_body, body, whole, content_type, encoding, path, status
        )
        if not kept_any:
            kept_any.append(True)
    except Exception:
        _log.debug("alephant_otel: content not kept", exc_info=True)


def adopt(span: ReadableSpan) -> None:
    """Move an ended span's pending content onto the ReadableSpan every processor gets. Never raises."""
    try:
        context = span.context
        found = pending.pop(context.span_id, None) if context is not None else None
        if found is not None:
            setattr(span, _ATTR, found)
    except Exception:  # a span class without instance attributes: no content for it
        _log.debug("alephant_otel: content not adopted", exc_info=True)


def with_content(
    span: ReadableSpan, attributes: Mapping[str, Any] | None, events: Sequence[Event]
) -> tuple[dict[str, Any], Sequence[Event]] | None:
    """The span's attributes and events with its captured content added; None when it has none. Never raises."""
    pending = getattr(span, _ATTR, None)
    if type(pending) is not Pending:
        return None
    try:
        content = pending.attributes()
    except Exception:
        if not _warned:
            _warned.append(True)
            _log.warning("alephant_otel: could not build a request's captured content; left out", exc_info=True)
        return None
    if not content:
        return None
    attrs = dict(attributes or {})
    if pending.capture.on_span:
        attrs.update(content)
    if pending.capture.on_event:
        stamp = span.end_time or span.start_time or 0
        details = {n.GEN_AI_OPERATION_NAME: attrs.get(n.GEN_AI_OPERATION_NAME, "chat"), **content}
        events = [*events, Event(n.EVENT_INFERENCE_DETAILS, details, stamp)]
    return attrs, events
