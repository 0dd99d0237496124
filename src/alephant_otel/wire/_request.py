"""The request side of the bridge: gateway headers out, request attributes on the span.

The headers are added while the instrumentation's CLIENT span is current, before it injects
``traceparent``/``baggage``; only requests to the gateway get them. A request whose span ends
before any response (a timeout, a refused connection, a cancelled task) is still counted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final

from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from alephant_otel import _fastpaths
from alephant_otel import _names as n
from alephant_otel.context._ids import new_id
from alephant_otel.context._state import active_state, active_totals, state_for
from alephant_otel.record._reqparams import params_of
from alephant_otel.record._requestbody import operation_for_path, provider_for, read_request
from alephant_otel.record._semconv import api_type_for_path
from alephant_otel.record._spanattrs import set_clean
from alephant_otel.redact._ownids import note_own_id
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
from alephant_otel.wire._scoping import drop_alephant_baggage, mark_outgoing

__all__ = ["RequestSide"]

_log = logging.getLogger(__name__)

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


def _url_parts(url: Any) -> tuple[str, str, int | None, str]:
    if isinstance(url, tuple):  # httpx < 0.20 raw form: (scheme, host, port, path)
        scheme, host, port, path = url
        return scheme.decode(), host.decode(), port, path.decode().split("?", 1)[0]
    # raw_host: the IDNA (punycode) form on the wire; httpx and httpx2 decode ``host`` differently.
    return url.scheme, url.raw_host.decode("ascii"), url.port, url.path


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
            note_own_id(request_id)
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


class RequestSide(BridgeBase):
    """The request hooks of :class:`~alephant_otel.wire._hooks.Bridge`."""

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
                if type(previous) is Attempt:  # one that got no response
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
        req = Attempt(span, path, info.method)
        if ours:
            req.request_id = request_id
        req.operation = operation_for_path(path)
        req.body = _in_memory(info.stream)
        req.request_model, doc = read_request(req.body)
        if doc is not None:
            req.params = params_of(doc)
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

    def _guard_end(self, req: Attempt) -> None:
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

    def _unanswered(self, req: Attempt, error: BaseException | None) -> None:
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
                set_clean(span, {**req.sent_params(), n.ATTR_ERROR_TYPE: error_type})
                status = getattr(span, "status", None)
                if status is None or status.status_code is StatusCode.UNSET:
                    span.set_status(Status(StatusCode.ERROR, f"no response: {error_type}"))
            self._tally(req, _NOTHING_READ, None, error_type)
        except Exception:
            _report("request end")
