"""The response side of the bridge: the body watched as the caller reads it, then usage, cost and
policy outcome recorded on the span and counted once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections import OrderedDict
from typing import Any, Final

from opentelemetry.trace import Span, Status, StatusCode

from alephant_otel import _names as n
from alephant_otel.context._scope import on_open_requests
from alephant_otel.context._totals import RequestTotals
from alephant_otel.record._acc import ParsedResponse
from alephant_otel.record._content import keep as keep_content
from alephant_otel.record._cost import compute_cost, gateway_cost
from alephant_otel.record._spanattrs import set_clean
from alephant_otel.record._toolcalls import asked_for_tools, requested_calls
from alephant_otel.record._usage import parse_body
from alephant_otel.wire._attempt import (
    _EXT,
    _NOTHING_READ,
    Attempt,
    BridgeBase,
    _has_list_layout,
    _in_memory,
    _put_back_end,
    _report,
)
from alephant_otel.wire._watch import BodyWatcher, watch_stream

__all__ = ["ResponseSide"]

#: Ids of recent responses whose usage was counted, oldest first (see _count_once).
_counted: OrderedDict[str, None] = OrderedDict()


_COUNTED_KEEP: Final = 4096


#: The bodies being read now, by watcher id: what an exit must end (see _end_open).
_reading: dict[int, tuple[tuple[RequestTotals, ...], BodyWatcher]] = {}


def _record_tool_calls(
    span: Span, body: bytes, content_type: str | None, content_encoding: str | None, whole: bool
) -> None:
    """Put the tool calls a response asked for on its span (only called when it asked). Never raises."""
    try:
        names, ids = requested_calls(body, content_type, content_encoding, whole)
        if names and span.is_recording():
            set_clean(span, {n.ATTR_RESPONSE_TOOL_CALL_NAMES: names, n.ATTR_RESPONSE_TOOL_CALL_IDS: ids})
    except Exception:
        _report("tool calls")


def _end_open(totals: RequestTotals | None) -> None:
    """End the requests whose response is still being read: those counted in ``totals``, or all.

    Called when the process exits (``sys.exit`` inside a session, the
    provider's shutdown): the rest of the body will never be read, and the
    span, marked ``alephant.response.incomplete``, must be exported and counted
    before the session's roll-up and the exporters' last flush.
    """
    for in_totals, watcher in list(_reading.values()):
        if totals is None or totals in in_totals:
            watcher.finish(complete=False)


def _count_once(parsed: ParsedResponse, req: Attempt) -> ParsedResponse:
    """``parsed``, without its usage when that usage was counted already.

    Called for the Responses made and for requests with no GenAI operation
    name: only a Response can be fetched back with its usage still to count
    (other fetches are GETs, never counted), so remembering the ids of chat
    completions or messages would only hold memory.

    A model call's usage always counts. Another gateway request's counts
    unless it repeats usage: a response counted before (fetched again, or a
    Response made in the foreground and then fetched), or a ``GET`` other
    than a fetched Response (a stored chat completion, a batch's results
    file). A Response made with ``background`` reports its usage only when
    fetched done, so that fetch counts, once. Other calls that spend tokens
    without a GenAI operation name (image generation, transcription) count.
    """
    rid = parsed.response_id
    if req.operation is None and (
        (rid is not None and rid in _counted) or (req.method in _GET and not _is_response_fetch(req.path))
    ):
        return dataclasses.replace(
            parsed,
            input_tokens=None,
            output_tokens=None,
            cache_read_input_tokens=None,
            cache_creation_input_tokens=None,
            reasoning_output_tokens=None,
        )
    if rid is not None:
        # OrderedDict's item set and popitem are single C calls: threads at worst evict one more.
        _counted[rid] = None
        if len(_counted) > _COUNTED_KEEP:
            with contextlib.suppress(KeyError):
                _counted.popitem(last=False)
    return parsed


_GET: Final = (b"GET", "GET")


#: A Response made (the request path has no query string: httpx keeps it apart).
_RESPONSES_PATHS: Final = ("/v1/responses", "/v1/responses/")


@functools.lru_cache(maxsize=256)
def _made_response(path: str) -> bool:
    """Whether ``path`` makes a Response (a cache hit costs less than ``endswith`` with a tuple)."""
    return path.endswith(_RESPONSES_PATHS)


def _is_response_fetch(path: str) -> bool:
    """Whether ``path`` is ``.../v1/responses/{id}``."""
    query = path.find("?")
    parent, _, rid = (path[:query] if query >= 0 else path).rstrip("/").rpartition("/")
    return bool(rid) and parent.endswith("/v1/responses")


_CONTENT_TYPE: Final = b"content-type"


_CONTENT_ENCODING: Final = b"content-encoding"


def _response_headers(headers: Any, cost_key: bytes) -> tuple[str | None, str | None, str | None]:
    """(content-type, content-encoding, cost header) of a response, in one pass.

    Three ``Headers.get`` calls would scan the list three times and raise and
    catch a ``KeyError`` for each header that is absent (usually two).
    """
    if headers is None:
        return None, None, None
    if not _has_list_layout(type(headers)):
        return headers.get("content-type"), headers.get("content-encoding"), headers.get(cost_key.decode("ascii"))
    ctype = encoding = cost = None
    for _, key, value in headers._list:
        if key == _CONTENT_TYPE:
            ctype = ctype or value.decode("latin-1")
        elif key == _CONTENT_ENCODING:
            encoding = encoding or value.decode("latin-1")
        elif key == cost_key:
            cost = cost or value.decode("latin-1")
    return ctype, encoding, cost


if hasattr(os, "register_at_fork"):
    # A fork's child must not end (and export again) the parent's open requests at its exit.
    os.register_at_fork(after_in_child=_reading.clear)


on_open_requests(_end_open)


class ResponseSide(BridgeBase):
    """The response hooks of :class:`~alephant_otel.wire._hooks.Bridge`."""

    def response_hook(self, span: Span, info: Any, response: Any) -> None:
        """Watch the body of a gateway response (sync clients). Never raises."""
        try:
            self._on_response(span, info, response)
        except Exception:
            _report("response hook")

    async def async_response_hook(self, span: Span, info: Any, response: Any) -> None:
        """Async-client variant of :meth:`response_hook`."""
        try:
            self._on_response(span, info, response)
        except Exception:
            _report("response hook")

    def _on_response(self, span: Span, info: Any, response: Any) -> None:
        extensions = info.extensions
        req = extensions.get(_EXT) if extensions is not None else None
        if type(req) is not Attempt or req.span is not span:
            return
        # What a redirect's next hop needs, and no more: httpx keeps a response (and so its
        # request and extensions) in a reference cycle, which must not hold the span too.
        extensions[_EXT] = req.request_id or ""
        _put_back_end(span, req.end)
        real_end = span.end
        headers = response.headers
        status = int(response.status_code)
        content_type, content_encoding, cost_value = _response_headers(headers, self._cost_key)
        reported_cost = gateway_cost(cost_value)

        def record(body: bytes, whole: bool, complete: bool, error: BaseException | None) -> None:
            parsed = parse_body(body, status, content_type, content_encoding, whole, req.body)
            self._record(req, status, parsed, reported_cost, complete, error, content_type)
            if asked_for_tools(parsed.finish_reasons, req.path, body):
                _record_tool_calls(req.span, body, content_type, content_encoding, whole)
            if self.capture is not None:  # references only: the messages are built at export
                keep_content(
                    req.span, self.capture, req.body, body, whole, content_type, content_encoding, req.path, status
                )

        stream = response.stream
        if type(stream).__name__ == "ByteStream":
            body = _in_memory(stream)
            if body is not None:
                # Kept as a watched stream's would be (head and tail past 1 MiB); the
                # instrumentation ends the span when this hook returns.
                memory = BodyWatcher(record)
                memory.feed(body)
                memory.finish(True)
                return

        def on_done(body: bytes, whole: bool, complete: bool, error: BaseException | None) -> None:
            _reading.pop(id(watcher), None)
            try:
                record(body, whole, complete, error)
            finally:
                real_end()

        watcher = BodyWatcher(on_done)
        if watch_stream(stream, watcher):
            # The instrumentation ends the span when this hook returns; the
            # real end happens when the body does.
            span.end = lambda end_time=None: None  # type: ignore[method-assign]
            _reading[id(watcher)] = (req.totals, watcher)
        else:
            self._record(req, status, _NOTHING_READ, reported_cost, True, None, content_type)

    def _record(
        self,
        req: Attempt,
        status: int,
        parsed: ParsedResponse,
        reported_cost: float | None,
        complete: bool,
        error: BaseException | None,
        content_type: str | None,
    ) -> None:
        span = req.span
        if (parsed.input_tokens is not None or parsed.output_tokens is not None) and (
            req.operation is None or _made_response(req.path)
        ):
            parsed = _count_once(parsed, req)
        cost: float | None
        if reported_cost is not None:
            cost, source = reported_cost, n.COST_SOURCE_GATEWAY
        else:
            cost = compute_cost(parsed, req.request_model, req.provider)
            source = n.COST_SOURCE_PRICE_TABLE
        if span.is_recording():
            # The parameters the request sent: read when it was sent (a small body), else probed here.
            attrs = req.sent_params()
            if parsed.response_model is not None:
                attrs[n.GEN_AI_RESPONSE_MODEL] = parsed.response_model
            if parsed.response_id is not None:
                attrs[n.GEN_AI_RESPONSE_ID] = parsed.response_id
            if parsed.finish_reasons:
                attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = parsed.finish_reasons
            # Spelled out, not a loop over (name, value) pairs built for every response.
            if parsed.input_tokens is not None:
                attrs[n.GEN_AI_USAGE_INPUT_TOKENS] = parsed.input_tokens
            if parsed.output_tokens is not None:
                attrs[n.GEN_AI_USAGE_OUTPUT_TOKENS] = parsed.output_tokens
            if parsed.cache_read_input_tokens is not None:
                attrs[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = parsed.cache_read_input_tokens
            if parsed.cache_creation_input_tokens is not None:
                attrs[n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = parsed.cache_creation_input_tokens
            if parsed.reasoning_output_tokens is not None:
                attrs[n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = parsed.reasoning_output_tokens
            if cost is not None:
                attrs[n.ATTR_COST_USD] = cost
                attrs[n.ATTR_COST_SOURCE] = source
            # A slice, not startswith: str.startswith parses its arguments as varargs.
            if content_type is not None and content_type[:17] == "text/event-stream":
                attrs[n.ATTR_STREAMING] = True
                attrs[n.GEN_AI_REQUEST_STREAM] = True
            # Completeness is judged from the body (terminal event seen, JSON parsed), not
            # from EOF: SDKs stop reading at "[DONE]" and close the response early.
            failed = error is not None and not isinstance(error, GeneratorExit)
            if not parsed.complete or failed:
                attrs[n.ATTR_BODY_INCOMPLETE] = True
            if parsed.policy is not None:
                attrs[n.ATTR_INTERCEPTED] = True
                span.add_event(
                    n.EVENT_POLICY,
                    {
                        n.EVENT_POLICY_REASON: parsed.policy.reason,
                        n.EVENT_POLICY_CODE: parsed.policy.code or "",
                        n.EVENT_POLICY_STATUS: parsed.policy.status,
                    },
                )
                span.set_status(Status(StatusCode.ERROR, f"intercepted by gateway policy: {parsed.policy.reason}"))
            elif failed:
                span.set_status(Status(StatusCode.ERROR, f"response body failed: {type(error).__name__}"))
                attrs[n.ATTR_ERROR_TYPE] = type(error).__qualname__
            elif status < 400 and parsed.error_type is not None:
                # A 200 whose body reports an error: a stream's error event (Anthropic's
                # overloaded_error, an OpenAI-style {"error": ...} chunk, response.failed).
                span.set_status(Status(StatusCode.ERROR, f"the response body reports an error: {parsed.error_type}"))
                attrs[n.ATTR_ERROR_TYPE] = parsed.error_type
            elif not parsed.complete and status < 400 and complete:
                # Only a body that reached its end: one the caller stopped reading (a
                # break out of a stream, a close) is incomplete, but nothing failed.
                span.set_status(Status(StatusCode.ERROR, "response body ended early or could not be read"))
            if status >= 400 and n.ATTR_ERROR_TYPE not in attrs:
                # GenAI semconv: every failed operation says why; the HTTP instrumentation
                # sets error.type only in its opt-in (new) semconv mode.
                attrs[n.ATTR_ERROR_TYPE] = str(status)
            if req.request_model is None and req.operation is not None and parsed.response_model is not None:
                set_clean(span, attrs, f"{req.operation} {parsed.response_model}")
            else:
                set_clean(span, attrs)
        self._tally(req, parsed, cost, str(status) if status >= 400 else parsed.error_type)
