"""The httpx / httpx2 request and response hooks: headers out, usage back.

``opentelemetry-instrumentation-httpx`` calls the request hook while its
CLIENT span is current, before it injects ``traceparent``/``baggage``; headers
the hook adds go on the wire. Only gateway requests are touched. The response
hook hands the body to a :class:`~alephant_otel.wire._watch.BodyWatcher` and defers
the span's end until the body has been read, so the exported request span
carries usage, cost and policy outcome, and its duration covers the whole
response (what ``gen_ai.client.operation.duration`` measures).

Every hook is guarded: an internal error is logged once and the request goes
on untouched.
"""

from __future__ import annotations

import logging

from opentelemetry.metrics import MeterProvider

from alephant_otel import _names as n
from alephant_otel.record._contentcap import Capture
from alephant_otel.record._cost import load_prices
from alephant_otel.record._metrics import Instruments
from alephant_otel.wire._gateway import GatewayMatcher
from alephant_otel.wire._request import RequestSide
from alephant_otel.wire._response import ResponseSide

__all__ = ["Bridge"]


_log = logging.getLogger(__name__)


class Bridge(RequestSide, ResponseSide):
    """The hooks for one configuration (gateway URLs, cost header, meters)."""

    def __init__(
        self,
        matcher: GatewayMatcher,
        *,
        cost_header: str = n.DEFAULT_COST_HEADER,
        meter_provider: MeterProvider | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.matcher = matcher
        self.capture = capture
        self.cost_header = cost_header
        self._cost_key = cost_header.lower().encode("ascii", "replace")
        self.instruments = Instruments(meter_provider)
        try:
            load_prices()  # at set-up, not in the first request
        except Exception:
            _log.warning("alephant_otel: genai-prices failed to load; costs come from the gateway only", exc_info=True)
