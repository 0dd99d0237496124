"""One gateway request in flight: what the request hook learns and the response hook completes.

Shared by both sides of the bridge (:mod:`._request`, :mod:`._response`), with the one-time
report of an internal error and the span's ``end`` stand-in.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from alephant_otel import _fastpaths
from alephant_otel.context._totals import RequestTotals
from alephant_otel.record._acc import ParsedResponse
from alephant_otel.record._contentcap import Capture
from alephant_otel.record._metrics import Instruments
from alephant_otel.record._reqparams import request_params
from alephant_otel.wire._gateway import GatewayMatcher

__all__ = ["Attempt", "BridgeBase"]

_log = logging.getLogger(__name__)

_EXT: Final = "alephant_otel"


#: What is known of a body that was not read (no response, or one left unwatched): nothing.
_NOTHING_READ: Final = ParsedResponse()


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


class Attempt:
    """What the request hook learns and the body callback needs."""

    __slots__ = (
        "agent_id",
        "body",
        "end",
        "method",
        "operation",
        "params",
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
        #: The request parameters, read when the body was small enough to parse whole; None: not read.
        self.params: dict[str, AttributeValue] | None = None
        self.retry_attempt = 0
        self.totals: tuple[RequestTotals, ...] = ()
        self.agent_id: str | None = None
        self.session_path: str | None = None
        self.started = time.perf_counter()
        #: What the span had as its own ``end`` attribute before the request hook's stand-in.
        self.end: Any = None
        #: The ``x-request-id`` this package made for the request (None: the caller's).
        self.request_id: str | None = None

    def sent_params(self) -> dict[str, AttributeValue]:
        """The ``gen_ai.request.*`` parameters the request sent (a dict of its own, maybe empty)."""
        params = self.params
        if params is not None:
            self.params = None  # handed over once: the caller adds to it
            return params
        return request_params(self.body) or {}


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


def _in_memory(stream: Any) -> bytes | None:
    """The body of an httpx/httpx2 ``ByteStream`` (bytes already in memory); None for any other stream.

    Only those are read here: iterating a streaming upload would consume it.
    A response has one when a transport built it from bytes (``MockTransport``,
    in-process ASGI/WSGI apps); it is never iterated, so it cannot be watched.
    """
    if type(stream).__name__ != "ByteStream":
        return None
    try:
        if _fastpaths.ENABLED:
            # httpx and httpx2 keep the bytes as ``_stream`` (private): read where they are
            # rather than through a generator and a join, for every request body.
            raw = stream._stream
            if type(raw) is bytes:
                return raw
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


class BridgeBase:
    """What both sides of :class:`~alephant_otel.wire._hooks.Bridge` share: its settings and the tally."""

    matcher: GatewayMatcher
    cost_header: str
    _cost_key: bytes
    instruments: Instruments
    #: Content capture settings; None (the default) is off and costs one check per response.
    capture: Capture | None

    def _tally(self, req: Attempt, parsed: ParsedResponse, cost: float | None, error_type: str | None) -> None:
        """Count one finished attempt in its run and session roll-ups and in the metrics."""
        if req.totals:
            # RequestTotals.add, inlined: one tuple for every enclosing scope, appended in C.
            entry = (req.retry_attempt > 0, parsed.policy is not None, cost, parsed.input_tokens, parsed.output_tokens)
            for totals in req.totals:
                pending = totals.pending
                pending.append(entry)
                if len(pending) >= RequestTotals.FOLD_AT:
                    totals.fold()
        instruments = self.instruments
        proxy = instruments.proxy
        if instruments.noop or (proxy is not None and proxy._real_instrument is None):
            return  # no meter provider (yet): nothing to record to, no call to make
        # By position, in the order of Instruments.record's parameters (see mark_outgoing above).
        instruments.record(
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
