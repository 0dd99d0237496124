"""Keep alephant baggage off hosts that should not get it.

OpenTelemetry's W3C ``baggage`` propagator sends every entry to every host an
instrumented client calls. The gateway reads the alephant-* headers, not
``baggage``, and third parties should not learn session ids at all; URL-quoting
every entry on every request is also the larger part of the per-request cost.

:class:`ScopedBaggagePropagator` is a drop-in for the W3C baggage propagator,
which ``configure()`` and the instrumentor swap in:

* always: ``alephant.*`` entries are not injected into gateway requests
  (they already carry the same ids as alephant-* headers);
* with scoping on (``ALEPHANT_SCOPE_BAGGAGE`` or ``baggage_hosts``):
  ``alephant.*`` entries are injected only into requests to the listed
  internal hosts (``host`` or ``host:port``), never to anyone else.

Other baggage entries are never touched. The httpx request hook tells the
propagator, through a context variable, where the request it is about to
inject goes.
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
# (host key, is gateway) of the request about to be injected; None outside an httpx request.
_outgoing: ContextVar[tuple[str, bool] | None] = ContextVar("alephant_otel_outgoing", default=None)
_internal: frozenset[str] = frozenset()
_enabled = False


def set_internal_hosts(hosts: frozenset[str] | None) -> None:
    """Turn scoping on for these internal hosts (None turns scoping off)."""
    global _internal, _enabled  # noqa: PLW0603 - process-wide switch, set by configure()
    _internal = frozenset(h.lower() for h in hosts) if hosts is not None else frozenset()
    _enabled = hosts is not None


def mark_outgoing(host: str, port: int | None, *, gateway: bool) -> None:
    """Record where the request whose headers are injected next goes."""
    if _enabled:
        host = host.lower()
        _outgoing.set((host if host in _internal or port is None else f"{host}:{port}", gateway))
    elif gateway:
        _outgoing.set(("", True))
    elif _outgoing.get() is not None:
        # A marker left by a request that failed before injection must not
        # apply to this one.
        _outgoing.set(None)


def _keep_alephant(target: tuple[str, bool] | None) -> bool:
    if _enabled:
        # The gateway never gets them, even when an internal-hosts entry also covers its host.
        return target is not None and not target[1] and target[0] in _internal
    return target is None or not target[1]


class ScopedBaggagePropagator(W3CBaggagePropagator):
    """W3C baggage, with ``alephant.*`` entries only for internal hosts."""

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        """Inject baggage, without alephant entries where they don't belong."""
        target = _outgoing.get()
        if target is not None:
            _outgoing.set(None)
        if not _keep_alephant(target):
            entries = baggage.get_all(context)
            if entries and any(k.startswith(_PREFIX) for k in entries):
                kept = {k: v for k, v in entries.items() if not k.startswith(_PREFIX)}
                if not kept:
                    # Nothing else to send: skip the header (and its quoting) entirely.
                    return
                ctx = baggage.clear(context)
                for key, value in kept.items():
                    ctx = baggage.set_baggage(key, value, ctx)
                context = ctx
        super().inject(carrier, context, setter)
