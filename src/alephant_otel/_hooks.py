"""The httpx / httpx2 request and response hooks: headers out, usage back.

``opentelemetry-instrumentation-httpx`` calls the request hook while its
CLIENT span is current, before it injects ``traceparent``/``baggage``; headers
the hook adds go on the wire. Only gateway requests are touched. The response
hook hands the body to a :class:`~alephant_otel._watch.BodyWatcher` and defers
the span's end until the body has been read, so the exported request span
carries usage, cost and policy outcome, and its duration covers the whole
response (what ``gen_ai.client.operation.duration`` measures).

Every hook is guarded: an internal error is logged once and the request goes
on untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any, Final

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from alephant_otel import _fastpaths
from alephant_otel import _names as n
from alephant_otel._context import active_state, active_totals, on_open_requests, state_for
from alephant_otel._cost import compute_cost, gateway_cost, load_prices
from alephant_otel._gateway import GatewayMatcher
from alephant_otel._ids import new_id
from alephant_otel._metrics import Instruments
from alephant_otel._scoping import drop_alephant_baggage, mark_outgoing
from alephant_otel._semconv import api_type_for_path
from alephant_otel._spanattrs import set_clean
from alephant_otel._toolcalls import asked_for_tools, requested_calls
from alephant_otel._totals import RequestTotals
from alephant_otel._usage import (
    ParsedResponse,
    operation_for_path,
    parse_body,
    provider_for,
    request_model,
)
from alephant_otel._watch import BodyWatcher, watch_stream

__all__ = ["Bridge"]

_log = logging.getLogger(__name__)

#: Ids of recent responses whose usage was counted, oldest first (see _count_once).
_counted: OrderedDict[str, None] = OrderedDict()
_COUNTED_KEEP: Final = 4096
_EXT: Final = "alephant_otel"
#: What is known of a body that was not read (no response, or one left unwatched): nothing.
_NOTHING_READ: Final = ParsedResponse()
_REQUEST_ID_LOWER: Final = n.HEADER_REQUEST_ID.lower()
_RETRY_LOWER: Final = n.HEADER_STAINLESS_RETRY.lower()
_REQUEST_ID_RAW: Final = n.HEADER_REQUEST_ID.encode("ascii")
_REQUEST_ID_KEY: Final = _REQUEST_ID_LOWER.encode("ascii")
_RETRY_KEY: Final = _RETRY_LOWER.encode("ascii")
_BAGGAGE_KEY: Final = b"baggage"
#: The alephant-* headers: only the gateway reads them.
_GATEWAY_HEADERS: Final = tuple(name.lower() for name in n.BAGGAGE_TO_HEADER.values())
#: LLM API call paths (OpenAI-compatible and Anthropic): one of these inside a session, to a
#: host that is not a gateway, is most likely a client pointed past the gateway by mistake.
_LLM_PATHS: Final = ("/chat/completions", "/responses", "/embeddings", "/messages", "/completions")
#: Hosts already warned about (one warning per host per process).
_misrouted_hosts: set[str] = set()


def _warn_if_misrouted(scheme: str, host: str, port: int | None, path: str) -> None:
    """Say once per host that an LLM call inside a session went to a host that is not a gateway.

    Such a call gets no alephant headers (only gateways do), so the gateway
    cannot group it and the session looks empty; nothing else would say so.
    Checked only for requests that are not gateway requests, path first.
    """
    if not path.rstrip("/").endswith(_LLM_PATHS):
        return
    origin = f"{scheme}://{host}" if port is None else f"{scheme}://{host}:{port}"
    if origin in _misrouted_hosts or not active_state().headers:
        return
    _misrouted_hosts.add(origin)
    _log.warning(
        "alephant_otel: an LLM API call inside a session went to %s, which is not a configured gateway, "
        "so it carries no alephant headers and the gateway cannot group it. If %s is your gateway, add it "
        "to %s or pass configure(gateway_url=...). Further calls to this host are not reported.",
        origin,
        origin,
        n.ENV_GATEWAY_URL,
    )


#: The bodies being read now, by watcher id: what an exit must end (see _end_open).
_reading: dict[int, tuple[tuple[RequestTotals, ...], BodyWatcher]] = {}
if hasattr(os, "register_at_fork"):
    # A fork's child must not end (and export again) the parent's open requests at its exit.
    os.register_at_fork(after_in_child=_reading.clear)


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


on_open_requests(_end_open)


class _Once:
    """Log an internal error once per call site, then stay quiet."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, where: str) -> None:
        if where in self._seen:
            _log.debug("alephant_otel: error in %s", where, exc_info=True)
            return
        self._seen.add(where)
        _log.warning(
            "alephant_otel: internal error in %s; the request is unaffected (further errors here are "
            "logged at debug level)",
            where,
            exc_info=True,
        )


_report = _Once()


def _count_once(parsed: ParsedResponse, req: _Request) -> ParsedResponse:
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


def _is_response_fetch(path: str) -> bool:
    """Whether ``path`` is ``.../v1/responses/{id}``."""
    query = path.find("?")
    parent, _, rid = (path[:query] if query >= 0 else path).rstrip("/").rpartition("/")
    return bool(rid) and parent.endswith("/v1/responses")


class _Request:
    """What the request hook learns and the body callback needs."""

    __slots__ = (
        "agent_id",
        "body",
        "end",
        "method",
        "operation",
        "path",
        "provider",
        "request_id",
        "request_model",
        "retry_attempt",
        "session_path",
        "span",
        "started",
        "totals",
    )

    def __init__(self, span: Span, path: str, method: bytes | str) -> None:
        self.span = span
        self.path = path
        self.method = method
        self.operation: str | None = None
        self.provider: str | None = None
        self.request_model: str | None = None
        # Held until the response body ends, to judge how much of a stream to read.
        self.body: bytes | None = None
        self.retry_attempt = 0
        self.totals: tuple[RequestTotals, ...] = ()
        self.agent_id: str | None = None
        self.session_path: str | None = None
        self.started = time.perf_counter()
        #: What the span had as its own ``end`` attribute before the request hook's stand-in.
        self.end: Any = None
        #: The ``x-request-id`` this package made for the request (None: the caller's).
        self.request_id: str | None = None


def _url_parts(url: Any) -> tuple[str, str, int | None, str]:
    if isinstance(url, tuple):  # httpx < 0.20 raw form: (scheme, host, port, path)
        scheme, host, port, path = url
        return scheme.decode(), host.decode(), port, path.decode().split("?", 1)[0]
    # raw_host: the IDNA (punycode) form on the wire; httpx and httpx2 decode ``host`` differently.
    return url.scheme, url.raw_host.decode("ascii"), url.port, url.path


_list_layout: dict[type, bool] = {}


def _has_list_layout(cls: type) -> bool:
    """Whether ``cls`` keeps headers as ``(raw, lower, value)`` bytes triples in ``_list``.

    ``Headers.__setitem__`` re-encodes and rescans every header on each call,
    which for six gateway headers was the largest part of the request hook.
    httpx and httpx2 both keep a plain list of triples, so the already-encoded
    triples of the active ids can be appended directly. That is private
    layout: it is verified once per class by behaviour, not by version, and
    any difference turns the fast path off (the public API is used instead).
    """
    ok = _list_layout.get(cls)
    if ok is None:
        ok = False
        try:
            probe = cls({"Keep": "1"})
            items = getattr(probe, "_list", None) if _fastpaths.ENABLED else None
            if type(items) is list:
                items.append((b"X-Probe", b"x-probe", b"v"))
                ok = (
                    probe.get("X-PROBE") == "v"
                    and list(probe.raw) == [(b"Keep", b"1"), (b"X-Probe", b"v")]
                    and list(probe.keys()) == ["keep", "x-probe"]
                    and list(probe.multi_items()) == [("keep", "1"), ("x-probe", "v")]
                )
        except Exception:
            ok = False
        _list_layout[cls] = ok
    return ok


def _header_value(headers: Any, present: dict[bytes, bytes], once: bool, key: bytes, name: str) -> str:
    """What ``headers.get(name)`` returns for a header that is there, from ``present`` when that is the same.

    An ASCII value of a header set once decodes the same in every encoding
    httpx may pick for the headers; anything else is read by httpx itself.
    """
    value = present[key]
    if once and value.isascii():
        return value.decode("ascii")
    found: str = headers.get(name)
    return found


def _add_headers(headers: Any, state: Any) -> tuple[str, str | None, bool]:
    """Add the gateway headers the caller did not set.

    Returns (request id, retry count header, whether the request id is one this added).

    Also takes ``alephant.*`` entries out of a ``baggage`` header set before the
    hook: the gateway gets the ids as alephant-* headers, never as baggage.
    """
    if _has_list_layout(type(headers)):
        items: list[tuple[bytes, bytes, bytes]] = headers._list
        # Lower-case name -> value, read in the same pass: a name set once (nearly always)
        # has its value here, without a ``Headers.get`` scan of the list.
        present = {key: value for _, key, value in items}
        once = len(present) == len(items)
        for triple in state.raw_headers:
            if triple[1] not in present:
                items.append(triple)
        ours = _REQUEST_ID_KEY not in present
        if ours:
            request_id = new_id("req_")
            items.append((_REQUEST_ID_RAW, _REQUEST_ID_KEY, request_id.encode("ascii")))
        else:
            request_id = _header_value(headers, present, once, _REQUEST_ID_KEY, _REQUEST_ID_LOWER)
        if _BAGGAGE_KEY in present:
            drop_alephant_baggage(headers)
        retry = _header_value(headers, present, once, _RETRY_KEY, _RETRY_LOWER) if _RETRY_KEY in present else None
        return request_id, retry, ours
    names = {key.lower() for key in headers}
    for name, value in state.headers:
        if name.lower() not in names:
            headers[name] = value
    if "baggage" in names:
        drop_alephant_baggage(headers)
    ours = _REQUEST_ID_LOWER not in names
    if ours:
        request_id = new_id("req_")
        headers[n.HEADER_REQUEST_ID] = request_id
    else:
        request_id = headers.get(_REQUEST_ID_LOWER)
    return request_id, headers.get(_RETRY_LOWER) if _RETRY_LOWER in names else None, ours


def _after_gateway_hop(headers: Any, previous_id: str, to_gateway: bool) -> None:
    """Take the previous hop's gateway headers off a redirected request.

    httpx builds a redirect's request from the previous one's headers, which
    the hook had given the gateway headers, and passes the same extensions on.
    Another host must not get them (as httpx drops ``Authorization`` when the
    origin changes), and each hop is a request of its own: the request id
    this package made for the previous hop (``previous_id``; empty when it was
    the caller's) is not reused.
    """
    if previous_id and headers.get(_REQUEST_ID_LOWER) == previous_id:
        del headers[_REQUEST_ID_LOWER]
    if not to_gateway:
        for name in _GATEWAY_HEADERS:
            if name in headers:
                del headers[name]


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


def _in_memory(stream: Any) -> bytes | None:
    """The body of an httpx/httpx2 ``ByteStream`` (bytes already in memory); None for any other stream.

    Only those are read here: iterating a streaming upload would consume it.
    A response has one when a transport built it from bytes (``MockTransport``,
    in-process ASGI/WSGI apps); it is never iterated, so it cannot be watched.
    """
    if type(stream).__name__ != "ByteStream":
        return None
    try:
        return b"".join(stream)
    except Exception:
        return None


def _put_back_end(span: Any, own: Any) -> None:
    """Undo the request hook's stand-in for ``span.end``: ``own`` is what the instance had (usually nothing)."""
    if own is not None:
        span.end = own
        return
    attrs = getattr(span, "__dict__", None)
    if attrs is not None:
        attrs.pop("end", None)


class Bridge:
    """The hooks for one configuration (gateway URLs, cost header, meters)."""

    def __init__(
        self,
        matcher: GatewayMatcher,
        *,
        cost_header: str = n.DEFAULT_COST_HEADER,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.matcher = matcher
        self.cost_header = cost_header
        self._cost_key = cost_header.lower().encode("ascii", "replace")
        self.instruments = Instruments(meter_provider)
        try:
            load_prices()  # at set-up, not in the first request
        except Exception:
            _log.warning("alephant_otel: genai-prices failed to load; costs come from the gateway only", exc_info=True)

    # -- request ------------------------------------------------------------

    def request_hook(self, span: Span, info: Any) -> None:
        """Add gateway headers and request attributes (sync clients). Never raises."""
        try:
            self._on_request(span, info)
        except Exception:
            _report("request hook")

    async def async_request_hook(self, span: Span, info: Any) -> None:
        """Async-client variant of :meth:`request_hook`."""
        try:
            self._on_request(span, info)
        except Exception:
            _report("request hook")

    def _on_request(self, span: Span, info: Any) -> None:
        # First, for every request: taking it also lets go of the span (see state_for).
        state = state_for(span)
        scheme, host, port, path = _url_parts(info.url)
        is_gateway = self.matcher.matches(scheme, host, port, path)
        # Positional arguments here and below: a keyword argument costs several hundred
        # instructions to pass, on a path every request takes.
        mark_outgoing(host, port, is_gateway, span, scheme)
        headers = info.headers
        extensions: MutableMapping[str, Any] | None = info.extensions
        if extensions is not None and headers is not None:
            previous = extensions.get(_EXT)
            if previous is not None:  # a redirect of a gateway request
                if type(previous) is _Request:  # one that got no response
                    previous = previous.request_id or ""
                _after_gateway_hop(headers, previous, is_gateway)
                if not is_gateway:
                    del extensions[_EXT]
        if not is_gateway:
            _warn_if_misrouted(scheme, host, port, path)
            return
        if headers is None:
            return
        request_id, retry, ours = _add_headers(headers, state)
        req = _Request(span, path, info.method)
        if ours:
            req.request_id = request_id
        req.operation = operation_for_path(path)
        req.body = _in_memory(info.stream)
        req.request_model = request_model(req.body)
        req.provider = provider_for(req.request_model, path)
        req.totals = active_totals()
        req.agent_id = state.current.agent_id
        req.session_path = state.current.session_path
        if retry is not None and retry.isdigit():
            req.retry_attempt = int(retry)
        if extensions is not None:
            extensions[_EXT] = req
            if _fastpaths.ENABLED:
                self._guard_end(req)
        if not span.is_recording():
            return
        attrs: dict[str, AttributeValue] = {
            n.ATTR_SPAN_KIND: n.SPAN_KIND_REQUEST,
            n.ATTR_REQUEST_ID: request_id,
            # The HTTP instrumentation writes these only in its opt-in (new) semconv mode.
            n.SERVER_ADDRESS: host,
            n.SERVER_PORT: port if port is not None else (443 if scheme == "https" else 80),
        }
        if state.current.parent_run_id is not None:
            attrs[n.ATTR_RUN_PARENT_ID] = state.current.parent_run_id
        if req.operation is not None:
            attrs[n.GEN_AI_OPERATION_NAME] = req.operation
            api_type = api_type_for_path(path)
            if api_type is not None:
                attrs[n.OPENAI_API_TYPE] = api_type
        if req.provider is not None:
            attrs[n.GEN_AI_PROVIDER_NAME] = req.provider
        if req.request_model is not None:
            attrs[n.GEN_AI_REQUEST_MODEL] = req.request_model
        if req.retry_attempt:
            attrs[n.ATTR_RETRY_ATTEMPT] = req.retry_attempt
        if req.operation is not None and req.request_model is not None:
            set_clean(span, attrs, f"{req.operation} {req.request_model}")
        else:
            set_clean(span, attrs)

    def _guard_end(self, req: _Request) -> None:
        """Record the request as failed if its span ends before any response comes.

        A timeout, a refused connection or a cancelled task raises through the
        instrumentation, which then ends the span without calling the response
        hook: without this the request would be missing from the run's and
        session's totals (the spans would still show it, so ``sessions`` would
        report the roll-up as not matching) and from the duration metric,
        which the GenAI conventions want for failed operations too. The
        response hook puts the span's own ``end`` back.
        """
        span = req.span
        real_end = span.end
        # Put back as found: usually by removing the stand-in, as a bound method kept
        # on the span itself would be a reference cycle that only the collector frees.
        try:
            req.end = span.__dict__.get("end")
        except AttributeError:  # a span class without instance attributes cannot take the stand-in
            return

        def end(end_time: int | None = None) -> None:
            _put_back_end(span, req.end)
            # Called from the instrumentation's ``finally`` while the error propagates.
            self._unanswered(req, sys.exc_info()[1])
            real_end(end_time)

        span.end = end  # type: ignore[method-assign]

    def _unanswered(self, req: _Request, error: BaseException | None) -> None:
        """Record a request that got no response because of ``error``. Never raises."""
        if error is None:  # not ended by a failure: nothing known to record
            return
        try:
            # A closed coroutine or generator was stopped, as a stream the caller left is.
            error_type = None if isinstance(error, GeneratorExit) else type(error).__qualname__
            span = req.span
            if error_type is not None and span.is_recording():
                # OpenTelemetry records ``Exception``s on the span but leaves a cancelled
                # task's span as if it had succeeded (BaseException is "not an error").
                set_clean(span, {n.ATTR_ERROR_TYPE: error_type})
                status = getattr(span, "status", None)
                if status is None or status.status_code is StatusCode.UNSET:
                    span.set_status(Status(StatusCode.ERROR, f"no response: {error_type}"))
            self._tally(req, _NOTHING_READ, None, error_type)
        except Exception:
            _report("request end")

    # -- response -----------------------------------------------------------

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
        if type(req) is not _Request or req.span is not span:
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
        req: _Request,
        status: int,
        parsed: ParsedResponse,
        reported_cost: float | None,
        complete: bool,
        error: BaseException | None,
        content_type: str | None,
    ) -> None:
        span = req.span
        if (parsed.input_tokens is not None or parsed.output_tokens is not None) and (
            req.operation is None or req.path.endswith(_RESPONSES_PATHS)
        ):
            parsed = _count_once(parsed, req)
        cost: float | None
        if reported_cost is not None:
            cost, source = reported_cost, n.COST_SOURCE_GATEWAY
        else:
            cost = compute_cost(parsed, req.request_model, req.provider)
            source = n.COST_SOURCE_PRICE_TABLE
        if span.is_recording():
            attrs: dict[str, AttributeValue] = {}
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
            if content_type is not None and content_type.startswith("text/event-stream"):
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

    def _tally(self, req: _Request, parsed: ParsedResponse, cost: float | None, error_type: str | None) -> None:
        """Count one finished attempt in its run and session roll-ups and in the metrics."""
        if req.totals:
            # RequestTotals.add, inlined: one tuple for every enclosing scope, appended in C.
            entry = (req.retry_attempt > 0, parsed.policy is not None, cost, parsed.input_tokens, parsed.output_tokens)
            for totals in req.totals:
                pending = totals.pending
                pending.append(entry)
                if len(pending) >= RequestTotals.FOLD_AT:
                    totals.fold()
        # By position, in the order of Instruments.record's parameters (see mark_outgoing above).
        self.instruments.record(
            req.operation,
            req.provider,
            req.request_model,
            parsed.response_model,
            req.agent_id,
            req.session_path,
            parsed.input_tokens,
            parsed.output_tokens,
            cost,
            time.perf_counter() - req.started,
            error_type,
        )
