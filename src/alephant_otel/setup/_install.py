"""Putting the stages onto a tracer provider: the span processor, the trace file, baggage scoping,
the hooks' bridge, the default provider and its exporters from the standard environment.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from alephant_otel.context._scope import use_tracer_provider
from alephant_otel.export._scrubexport import guard_provider
from alephant_otel.integrations import set_agents_integration
from alephant_otel.record._processor import AlephantSpanProcessor
from alephant_otel.redact._scrub import set_extra_patterns
from alephant_otel.setup._config import Settings
from alephant_otel.setup._exits import BoundedSpanProcessors, watch_provider
from alephant_otel.setup._hooking import _hook_clients, _lock, _patch_instrumentors, set_bridge
from alephant_otel.wire import _scoping
from alephant_otel.wire._gateway import GatewayMatcher
from alephant_otel.wire._hooks import Bridge

if TYPE_CHECKING:
    from alephant_otel.export._traceslot import TraceFileSlot

__all__ = []

_log = logging.getLogger(__name__)

_joined: weakref.WeakKeyDictionary[SdkTracerProvider, AlephantSpanProcessor] = weakref.WeakKeyDictionary()


# One trace file processor per provider, switched by each configure() (see TraceFileSlot).
_trace_files: weakref.WeakKeyDictionary[SdkTracerProvider, TraceFileSlot] = weakref.WeakKeyDictionary()


def _join_provider(provider: Any) -> SdkTracerProvider | None:
    """Add our span processor to an SDK tracer provider, once."""
    if not isinstance(provider, SdkTracerProvider):
        proxy_target = getattr(provider, "_tracer_provider", None)  # the API's proxy before set
        if not isinstance(proxy_target, SdkTracerProvider):
            return None
        provider = proxy_target
    sdk: SdkTracerProvider = provider
    ours = _joined.get(sdk)
    if ours is None:
        ours = _joined[sdk] = AlephantSpanProcessor()
    # Every time: processors the app added since the last call get scrubbed exports too.
    guard_provider(sdk, ours)
    return sdk


def _add_trace_file(provider: SdkTracerProvider, settings: Settings) -> None:
    """Point the provider's trace file at ``settings.trace_file`` (None: stop writing one)."""
    from alephant_otel.export._fileexporter import named_exporter_paths
    from alephant_otel.export._traceslot import TraceFileSlot

    target = settings.trace_file
    if target is not None and target.resolve() in named_exporter_paths():
        target = None  # OTEL_TRACES_EXPORTER=alephant_file writes this file already

    slot = _trace_files.get(provider)
    if slot is None:
        if target is None:
            return
        slot = _trace_files[provider] = TraceFileSlot()
        provider.add_span_processor(slot.processor)
    slot.switch(target)


def _apply_scoping(settings: Settings) -> None:
    _scoping.set_internal_hosts(settings.baggage_hosts)
    current = propagate.get_global_textmap()
    members = getattr(current, "_propagators", [current])
    if any(isinstance(p, _scoping.ScopedBaggagePropagator) for p in members):
        return
    replaced = [_scoping.ScopedBaggagePropagator() if type(p) is W3CBaggagePropagator else p for p in members]
    propagate.set_global_textmap(CompositePropagator(replaced))


def _install(settings: Settings, tracer_provider: Any, meter_provider: Any, *, instrument_new: bool) -> None:
    with _lock:
        set_extra_patterns(settings.scrub_patterns)
        set_bridge(
            Bridge(
                GatewayMatcher(settings.gateway_urls),
                cost_header=settings.cost_header,
                meter_provider=meter_provider,
                capture=settings.capture,
            )
        )
        provider = _join_provider(tracer_provider if tracer_provider is not None else trace.get_tracer_provider())
        use_tracer_provider(tracer_provider)
        if provider is not None:
            _add_trace_file(provider, settings)
            watch_provider(provider)
        _apply_scoping(settings)
        _patch_instrumentors()
        _hook_clients(tracer_provider, meter_provider, instrument_new=instrument_new)
    set_agents_integration(settings.agents_integration)


def _new_provider() -> SdkTracerProvider:
    from opentelemetry.sdk.resources import Resource

    # Bounded processors: the exit never waits the exporter's timeout on an endpoint that hangs.
    provider = SdkTracerProvider(resource=Resource.create(), active_span_processor=BoundedSpanProcessors())
    for exporter in _env_exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _env_exporters() -> list[Any]:
    """Span exporters named by the standard environment, via their entry points."""
    from importlib.metadata import entry_points

    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not names and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = "otlp"
    exporters: list[Any] = []
    for requested in (x.strip() for x in names.split(",")):
        if not requested or requested == "none":
            continue
        name = requested
        if name == "otlp":
            # The SDK's own configurator maps "otlp" by protocol, as here.
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            )
            name = "otlp_proto_http" if protocol.startswith("http") else "otlp_proto_grpc"
        found = [ep for ep in entry_points(group="opentelemetry_traces_exporter") if ep.name == name]
        if not found:
            _log.error("OTEL_TRACES_EXPORTER names %r, which is not installed; ignoring it", name)
            continue
        try:
            exporters.append(found[0].load()())
        except Exception:
            _log.exception("could not create the %r span exporter; ignoring it", name)
    return exporters
