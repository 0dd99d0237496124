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

import typing

from alephant_otel._version import __version__

if typing.TYPE_CHECKING:
    from alephant_otel.context._carry import attach_carrier, bind_context, context_carrier
    from alephant_otel.context._context import run, session
    from alephant_otel.context._state import Current, current
    from alephant_otel.context._tool import tool
    from alephant_otel.record._processor import AlephantSpanProcessor
    from alephant_otel.setup._distro import AlephantInstrumentor
    from alephant_otel.setup._setup import configure
    from alephant_otel.wire._headers import gateway_headers

# Imported on first use (PEP 562): the command line, the pytest plugin and the
# trace-file reader live in this package too, and none of them needs the SDK or
# the instrumentation that these names bring (~0.4 s of imports at every start).
_LAZY: dict[str, str] = {
    "AlephantInstrumentor": "alephant_otel.setup._distro",
    "AlephantSpanProcessor": "alephant_otel.record._processor",
    "Current": "alephant_otel.context._state",
    "attach_carrier": "alephant_otel.context._carry",
    "bind_context": "alephant_otel.context._carry",
    "configure": "alephant_otel.setup._setup",
    "context_carrier": "alephant_otel.context._carry",
    "current": "alephant_otel.context._state",
    "gateway_headers": "alephant_otel.wire._headers",
    "run": "alephant_otel.context._context",
    "session": "alephant_otel.context._context",
    "tool": "alephant_otel.context._tool",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "tool",
]
