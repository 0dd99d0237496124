"""alephant-otel: OpenTelemetry tracing for the Alephant AI gateway.

Sessions and runs live in OpenTelemetry baggage and as parent spans; a hook
in the httpx/httpx2 instrumentation turns them into the gateway's
``alephant-*`` headers on gateway requests only; request spans carry ids,
tokens and cost for any OTLP backend.

Examples:
    >>> import alephant_otel
    >>> with alephant_otel.session("case-42", name="Refund"), alephant_otel.run(agent_id="triage"):
    ...     alephant_otel.current().session_id
    'case-42'
"""

from __future__ import annotations

from alephant_otel._carry import attach_carrier, bind_context, context_carrier
from alephant_otel._context import Current, current, run, session
from alephant_otel._headers import gateway_headers
from alephant_otel._processor import AlephantSpanProcessor
from alephant_otel._setup import AlephantInstrumentor, configure
from alephant_otel._version import __version__

__all__ = [
    "AlephantInstrumentor",
    "AlephantSpanProcessor",
    "Current",
    "__version__",
    "attach_carrier",
    "bind_context",
    "configure",
    "context_carrier",
    "current",
    "gateway_headers",
    "run",
    "session",
]
