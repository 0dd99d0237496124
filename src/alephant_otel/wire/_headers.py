"""Gateway headers for clients the httpx hooks don't reach."""

from __future__ import annotations

from alephant_otel import _names as n
from alephant_otel.context._ids import new_id
from alephant_otel.context._state import active_state
from alephant_otel.context._validate import check_value

__all__ = ["gateway_headers"]


def gateway_headers(request_id: str | None = None) -> dict[str, str]:
    """Return the gateway headers for the active session/run context.

    For clients the httpx/httpx2 hooks don't reach (``requests``, ``aiohttp``,
    curl, n8n): pass the dict as extra headers on a gateway call. A fresh
    ``x-request-id`` is generated for each call unless given.

    Args:
        request_id: The ``x-request-id`` to send; generated when omitted.

    Raises:
        ValueError: ``request_id`` is not a valid header value.

    Examples:
        >>> from alephant_otel import gateway_headers, run, session
        >>> with session("case-42"), run("run-1", agent_id="triage"):
        ...     h = gateway_headers(request_id="req-1")
        >>> h["alephant-session-id"], h["Alephant-Run-Id"], h["x-request-id"]
        ('case-42', 'run-1', 'req-1')
    """
    if request_id is not None:
        check_value("request_id", "id", request_id)
    headers = dict(active_state().headers)
    headers[n.HEADER_REQUEST_ID] = request_id if request_id is not None else new_id("req_")
    return headers
