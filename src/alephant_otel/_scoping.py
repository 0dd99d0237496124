"""Keep alephant baggage off hosts that should not get it.

OpenTelemetry's W3C ``baggage`` propagator sends every entry to every host an
instrumented client calls. The gateway reads the alephant-* headers, not
``baggage``, and third parties should not learn session ids at all; URL-quoting
every entry on every request is also the larger part of the per-request cost.

:class:`ScopedBaggagePropagator` is a drop-in for the W3C baggage propagator:
with scoping on, ``alephant.*`` entries are injected only into requests to the
hosts listed as internal services (``host`` or ``host:port`` entries of
``ALEPHANT_SCOPE_BAGGAGE``); other entries are untouched. The httpx request hook tells it, through a context variable,
which host the request it is about to inject goes to.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final

from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import CarrierT, Setter, default_setter

__all__ = ["ScopedBaggagePropagator", "mark_outgoing", "set_internal_hosts"]

_PREFIX: Final = "alephant."
# The host of the request about to be injected; None outside an httpx request.
_outgoing: ContextVar[str | None] = ContextVar("alephant_otel_outgoing_host", default=None)
_internal: frozenset[str] = frozenset()
_enabled = False


def set_internal_hosts(hosts: frozenset[str] | None) -> None:
    """Turn scoping on for these internal hosts (None turns scoping off)."""
    global _internal, _enabled  # noqa: PLW0603 - process-wide switch, set by configure()
    _internal = frozenset(h.lower() for h in hosts) if hosts is not None else frozenset()
    _enabled = hosts is not None


def mark_outgoing(host: str, port: int | None) -> None:
    """Record the host of the request whose headers are injected next."""
    if _enabled:
        host = host.lower()
        _outgoing.set(host if host in _internal or port is None else f"{host}:{port}")


class ScopedBaggagePropagator(W3CBaggagePropagator):
    """W3C baggage, with ``alephant.*`` entries only for internal hosts."""

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        """Inject baggage, dropping alephant entries unless the host is internal."""
        if _enabled:
            host = _outgoing.get()
            _outgoing.set(None)
            if host is None or host not in _internal:
                entries = baggage.get_all(context)
                if any(k.startswith(_PREFIX) for k in entries):
                    ctx = context
                    for key in [k for k in entries if k.startswith(_PREFIX)]:
                        ctx = baggage.remove_baggage(key, ctx)
                    context = ctx
        super().inject(carrier, context, setter)
