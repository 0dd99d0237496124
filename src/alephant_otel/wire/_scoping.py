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
inject goes, and under which CLIENT span. The marker holds for injections
under that span or a child of it: a second client instrumentation under
httpx (``opentelemetry-instrumentation-aiohttp-client`` below an aiohttp-backed
httpx transport) injects again, under its own span, into the same request.
A marker left behind (a request that failed before injecting, or one long
done) applies to no other injection.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Final

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import CarrierT, Setter, default_setter

from alephant_otel.wire._gateway import _ascii_host

__all__ = ["ScopedBaggagePropagator", "drop_alephant_baggage", "host_key", "mark_outgoing", "set_internal_hosts"]

_PREFIX: Final = "alephant."
# (host key, is gateway, its CLIENT span's context) of the last httpx request marked in this
# context. The span context, not the span: a marker outlives its request, and would keep the span.
_outgoing: ContextVar[tuple[str, bool, trace.SpanContext] | None] = ContextVar("alephant_otel_outgoing", default=None)
_internal: frozenset[str] = frozenset()
_enabled = False


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def host_key(entry: str) -> str:
    """An internal-hosts entry as requests are matched against it.

    ``host`` or ``host:port``; lower case, no trailing dot, internationalised
    names in their IDNA (wire) form, IPv6 literals without brackets
    (``[::1]:8080`` -> ``::1:8080``, ``[::1]`` -> ``::1``).

    Examples:
        >>> host_key(" Svc.Internal.:8080 "), host_key("[::1]:9000"), host_key("[::1]")
        ('svc.internal:8080', '::1:9000', '::1')
    """
    entry = entry.strip().lower()
    port = ""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host = entry  # a bare IPv6 literal, or a name
    host = host.rstrip(".")
    # As the gateway's own host is matched; a name that is not valid IDNA stays as
    # it is and matches nothing (request hosts are always ASCII).
    with contextlib.suppress(ValueError):
        host = _ascii_host(host)
    return f"{host}:{port}" if port else host


def set_internal_hosts(hosts: frozenset[str] | None) -> None:
    """Turn scoping on for these internal hosts (None turns scoping off)."""
    global _internal, _enabled  # noqa: PLW0603 - process-wide switch, set by configure()
    _internal = frozenset(host_key(h) for h in hosts) if hosts is not None else frozenset()
    _enabled = hosts is not None


def mark_outgoing(host: str, port: int | None, gateway: bool, span: trace.Span, scheme: str = "") -> None:
    """Record where the request of the CLIENT span ``span`` goes, for the injections under it.

    ``port`` is None when the URL names none; an entry ``svc:80`` still
    matches ``http://svc/`` (the scheme's default port).
    """
    if _enabled:
        host = host.lower().rstrip(".")
        if host not in _internal:
            effective = port if port is not None else _DEFAULT_PORTS.get(scheme)
            if effective is not None:
                host = f"{host}:{effective}"
        _outgoing.set((host, gateway, span.get_span_context()))
    elif gateway:
        _outgoing.set(("", True, span.get_span_context()))
    # Scoping off and not the gateway: OpenTelemetry's default, which a marker left by
    # another request does not change (it is bound to that request's span).


def _marked_for(context: Context | None) -> tuple[str, bool, trace.SpanContext] | None:
    """The marker of the request being injected under the current span, if any."""
    target = _outgoing.get()
    if target is None:
        return None
    current = trace.get_current_span(context)
    marked = target[2]
    if current.get_span_context() is marked:
        return target  # the httpx instrumentation's own injection
    parent = getattr(current, "parent", None)  # an SDK span's parent SpanContext
    if parent is not None and parent.span_id == marked.span_id:
        return target
    return None


def drop_alephant_baggage(headers: Any) -> None:
    """Remove ``alephant.*`` members from ``baggage`` headers already on a gateway request.

    An SDK that propagates trace context itself (the ``anthropic`` SDK's own
    tracing does, by default) injects baggage when it builds the request,
    before the httpx hook says where the request goes; the instrumentation's
    later injection skips an empty header rather than replacing one. Other
    members are kept, in order.
    """
    values = headers.get_list("baggage") if hasattr(headers, "get_list") else [headers.get("baggage")]
    members = [m.strip() for value in values if value for m in value.split(",") if m.strip()]
    kept = [m for m in members if not m.split("=", 1)[0].strip().startswith(_PREFIX)]
    if len(kept) == len(members):
        return
    del headers["baggage"]
    if kept:
        headers["baggage"] = ",".join(kept)


def _keep_alephant(target: tuple[str, bool, trace.SpanContext] | None) -> bool:
    if _enabled:
        # The gateway never gets them, even when an internal-hosts entry also covers its host.
        return target is not None and not target[1] and target[0] in _internal
    return target is None or not target[1]


#: The last baggage this propagator filtered, and its entries other than alephant.* ones
#: (None: it had none of those to drop).
_last_kept: tuple[dict[str, object], dict[str, object] | None] = ({}, None)


class ScopedBaggagePropagator(W3CBaggagePropagator):
    """W3C baggage, with ``alephant.*`` entries only for internal hosts."""

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        """Inject baggage, without alephant entries where they don't belong."""
        global _last_kept  # noqa: PLW0603 - a tuple, swapped atomically
        target = _marked_for(context)
        if not _keep_alephant(target):
            entries = baggage.get_all(context)
            if not entries:
                kept = None
            else:
                last = _last_kept
                if entries == last[0]:  # compared in C: requests inject the same baggage again and again
                    kept = last[1]
                else:
                    kept = (
                        {k: v for k, v in entries.items() if not k.startswith(_PREFIX)}
                        if any(k.startswith(_PREFIX) for k in entries)
                        else None
                    )
                    _last_kept = (dict(entries), kept)
            if kept is not None:
                if not kept:
                    # Nothing else to send: skip the header (and its quoting) entirely.
                    return
                ctx = baggage.clear(context)
                for key, value in kept.items():
                    ctx = baggage.set_baggage(key, value, ctx)
                context = ctx
        super().inject(carrier, context, setter)
