"""Wiring: ``configure()``, ``AlephantInstrumentor`` and the zero-code entry points.

Our hooks reach httpx and httpx2 through ``opentelemetry-instrumentation-httpx``.
Its instrumentors are process-wide singletons that take hooks only when
``instrument()`` is called, and under ``opentelemetry-instrument`` they are
called by their own entry points, in an order we don't control. So
``_instrument`` of both is wrapped (once, with ``wrapt``) to chain our hooks
before any hooks the caller passes; the chained hooks look the active bridge
up on each call, so reconfiguring never needs re-instrumenting. A client
instrumentor that was instrumented before we arrived is re-instrumented with
its own hooks kept.

Nothing here raises during start-up under ``opentelemetry-instrument``: an
exception in an instrumentor or pre/post hook would abort every instrumentor
after it. Failures log once and leave the app running.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Collection, Iterable
from functools import partial
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.metrics import MeterProvider
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from alephant_otel import _names as n
from alephant_otel import _scoping
from alephant_otel._aiotransports import follow_httpx_instrumentation, follows_instrumentation
from alephant_otel._config import Settings, env_sigterm_flush, resolve_settings
from alephant_otel._context import use_tracer_provider
from alephant_otel._exits import BoundedSpanProcessors, install_sigterm_flush, watch_provider
from alephant_otel._gateway import GatewayMatcher
from alephant_otel._hooks import Bridge
from alephant_otel._processor import AlephantSpanProcessor
from alephant_otel._scrub import set_extra_patterns
from alephant_otel._scrubexport import guard_provider
from alephant_otel.integrations import set_agents_integration

if TYPE_CHECKING:
    from alephant_otel._traceslot import TraceFileSlot

__all__ = ["AlephantInstrumentor", "configure"]

_log = logging.getLogger(__name__)
_lock = threading.RLock()
_bridge: Bridge | None = None
_patched = False
_auto = False  # set by the pre-instrument entry point under opentelemetry-instrument
_joined: weakref.WeakKeyDictionary[SdkTracerProvider, AlephantSpanProcessor] = weakref.WeakKeyDictionary()
# One trace file processor per provider, switched by each configure() (see TraceFileSlot).
_trace_files: weakref.WeakKeyDictionary[SdkTracerProvider, TraceFileSlot] = weakref.WeakKeyDictionary()
# Client instrumentor class -> (tracer provider it was instrumented with, the caller's own hooks).
_hooked: dict[type, tuple[Any, dict[str, Any]]] = {}
_HOOK_NAMES = ("request_hook", "response_hook", "async_request_hook", "async_response_hook")


# --- hook dispatch ---------------------------------------------------------------


def _request_hook(span: Any, info: Any) -> None:
    bridge = _bridge
    if bridge is not None:
        bridge.request_hook(span, info)


def _response_hook(span: Any, info: Any, response: Any) -> None:
    bridge = _bridge
    if bridge is not None:
        bridge.response_hook(span, info, response)


async def _async_request_hook(span: Any, info: Any) -> None:
    bridge = _bridge
    if bridge is not None:
        bridge.request_hook(span, info)


async def _async_response_hook(span: Any, info: Any, response: Any) -> None:
    bridge = _bridge
    if bridge is not None:
        bridge.response_hook(span, info, response)


_misfit_warned: set[int] = set()


def _chain(ours: Any, theirs: Any, *, is_async: bool) -> Any:
    """``ours`` then the caller's hook ``theirs``, as one hook of the kind the instrumentation calls.

    A hook of the wrong kind (a plain function as an async hook, or a
    coroutine function as a sync one) is left out with a warning: the
    instrumentation alone would drop the first silently and, for the second,
    only create coroutines nobody awaits. Chained as it was, a plain function
    as an async hook made every async request raise ``TypeError`` in the app.
    """
    if theirs is None or theirs is ours:
        return ours
    if iscoroutinefunction(theirs) != is_async:
        if id(theirs) not in _misfit_warned:
            _misfit_warned.add(id(theirs))
            _log.warning(
                "alephant_otel: httpx hook %r is not called: %s",
                theirs,
                "an async hook must be an async def function"
                if is_async
                else "a sync client's hook must be a plain function, not async def",
            )
        return ours
    if is_async:

        async def chained_async(*args: Any) -> None:
            await ours(*args)
            await theirs(*args)

        return chained_async

    def chained(*args: Any) -> None:
        ours(*args)
        theirs(*args)

    return chained


def _instrument_with_our_hooks(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    theirs = {name: kwargs[name] for name in _HOOK_NAMES if kwargs.get(name) is not None}
    kwargs["request_hook"] = _chain(_request_hook, kwargs.get("request_hook"), is_async=False)
    kwargs["response_hook"] = _chain(_response_hook, kwargs.get("response_hook"), is_async=False)
    kwargs["async_request_hook"] = _chain(_async_request_hook, kwargs.get("async_request_hook"), is_async=True)
    kwargs["async_response_hook"] = _chain(_async_response_hook, kwargs.get("async_response_hook"), is_async=True)
    result = wrapped(*args, **kwargs)
    _hooked[type(instance)] = (kwargs.get("tracer_provider"), theirs)
    return result


def _instrument_client_once(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """``instrument_client`` with our hooks, and a no-op when global instrumentation traces the client already.

    OTel's own ``instrument_client`` on top of global instrumentation wraps the
    transport twice and every request gets two CLIENT spans. Global
    instrumentation covers httpx's own transports (and the aiohttp ones this
    package follows), not a custom one such as ``MockTransport``: that client
    is still instrumented on its own, as OpenTelemetry alone would.
    """
    client = args[0] if args else kwargs.get("client")
    module_name = type(client).__module__.split(".", 1)[0]
    for inst in _client_instrumentors():
        if (
            getattr(type(inst), "_module_name", None) == module_name
            and inst.is_instrumented_by_opentelemetry
            and _traced_globally(getattr(client, "_transport", None), type(inst)._module)
        ):
            _log.debug("alephant_otel: %s is instrumented globally; instrument_client is a no-op", module_name)
            return None
    names = ("client", "tracer_provider", "request_hook", "response_hook")
    call = dict(zip(names, args, strict=False)) | kwargs
    is_async = hasattr(client, "aclose") and not hasattr(client, "close")
    ours_req, ours_resp = (_async_request_hook, _async_response_hook) if is_async else (_request_hook, _response_hook)
    call["request_hook"] = _chain(ours_req, call.get("request_hook"), is_async=is_async)
    call["response_hook"] = _chain(ours_resp, call.get("response_hook"), is_async=is_async)
    return wrapped(**call)


def _traced_globally(transport: Any, module: Any) -> bool:
    return isinstance(transport, (module.HTTPTransport, module.AsyncHTTPTransport)) or follows_instrumentation(
        transport
    )


def _client_instrumentors() -> list[BaseInstrumentor]:
    from opentelemetry.instrumentation import httpx as otel_httpx

    found: list[BaseInstrumentor] = []
    for name in ("HTTPXClientInstrumentor", "HTTPX2ClientInstrumentor"):
        cls = getattr(otel_httpx, name, None)
        if cls is not None and getattr(cls, "_module", None) is not None:
            found.append(cls())
    return found


def _patch_instrumentors() -> None:
    global _patched  # noqa: PLW0603 - one process-wide patch
    if _patched:
        return
    import wrapt

    wrapt.wrap_function_wrapper(
        "opentelemetry.instrumentation.httpx", "_BaseHTTPXClientInstrumentor._instrument", _instrument_with_our_hooks
    )
    wrapt.wrap_function_wrapper(
        "opentelemetry.instrumentation.httpx", "_BaseHTTPXClientInstrumentor.instrument_client", _instrument_client_once
    )
    follow_httpx_instrumentation()
    _patched = True


def _existing_hooks(instrumentor: BaseInstrumentor) -> dict[str, Any]:
    """The hooks a client instrumentor was instrumented with before we patched it."""
    module: Any = getattr(type(instrumentor), "_module", None)
    hooks: dict[str, Any] = {}
    for cls_name, method, names in (
        ("HTTPTransport", "handle_request", ("request_hook", "response_hook")),
        ("AsyncHTTPTransport", "handle_async_request", ("async_request_hook", "async_response_hook")),
    ):
        wrapper = getattr(getattr(module, cls_name), method, None)
        bound = getattr(wrapper, "_self_wrapper", None)
        if isinstance(bound, partial):
            for name in names:
                if bound.keywords.get(name) is not None:
                    hooks[name] = bound.keywords[name]
    return hooks


def _hook_clients(tracer_provider: Any, meter_provider: Any, *, instrument_new: bool) -> None:
    for inst in _client_instrumentors():
        kwargs: dict[str, Any] = {}
        if tracer_provider is not None:
            kwargs["tracer_provider"] = tracer_provider
        if meter_provider is not None:
            kwargs["meter_provider"] = meter_provider
        if inst.is_instrumented_by_opentelemetry:
            hooked = _hooked.get(type(inst))
            if hooked is not None:
                provider, theirs = hooked
                if tracer_provider is None or tracer_provider is provider:
                    continue
                # configure() with another provider: HTTP spans must follow it.
                kwargs.update(theirs)
            else:
                # Instrumented before we patched: re-instrument, keeping its hooks.
                kwargs.update(_existing_hooks(inst))
            inst.uninstrument()
            inst.instrument(**kwargs)
        elif instrument_new:
            inst.instrument(**kwargs)


# --- providers ---------------------------------------------------------------------


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
    from alephant_otel._fileexporter import named_exporter_paths
    from alephant_otel._traceslot import TraceFileSlot

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
    global _bridge  # noqa: PLW0603 - the hooks read the active bridge
    with _lock:
        set_extra_patterns(settings.scrub_patterns)
        _bridge = Bridge(
            GatewayMatcher(settings.gateway_urls), cost_header=settings.cost_header, meter_provider=meter_provider
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


# --- public API -------------------------------------------------------------------------


class AlephantInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """OpenTelemetry instrumentor for the Alephant gateway.

    For apps that manage their own tracer provider, and what
    ``opentelemetry-instrument`` loads (entry point ``alephant``; disable with
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=alephant``). It adds
    :class:`AlephantSpanProcessor` to the SDK tracer provider and the gateway
    header hooks to the httpx and httpx2 instrumentations (instrumenting them
    if nobody has yet), keeping any hooks you pass to those instrumentors.

    Keyword arguments of :meth:`instrument`: ``tracer_provider``,
    ``meter_provider``, ``gateway_url``, ``trace_file``, ``cost_header``,
    ``baggage_hosts``, ``scrub_patterns``, ``agents_integration`` (see :func:`configure`).

    Examples:
        >>> from alephant_otel import AlephantInstrumentor
        >>> AlephantInstrumentor().instrument(gateway_url="https://ai.alephant.io")  # doctest: +SKIP
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """No hard dependency: httpx and httpx2 are each optional."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        try:
            settings = resolve_settings(
                gateway_url=kwargs.get("gateway_url"),
                trace_file=kwargs.get("trace_file"),
                cost_header=kwargs.get("cost_header"),
                baggage_hosts=kwargs.get("baggage_hosts"),
                scrub_patterns=kwargs.get("scrub_patterns"),
                agents_integration=kwargs.get("agents_integration"),
            )
        except ValueError:
            if not _auto:
                raise
            _log.exception("alephant_otel: invalid configuration; using defaults")
            settings = Settings()
        try:
            _install(settings, kwargs.get("tracer_provider"), kwargs.get("meter_provider"), instrument_new=not _auto)
        except Exception:
            if not _auto:
                raise
            _log.exception("alephant_otel: failed to set up; the application continues untraced by alephant")

    def _uninstrument(self, **kwargs: Any) -> None:
        global _bridge  # noqa: PLW0603
        with _lock:
            _bridge = None
            _scoping.set_internal_hosts(None)


def _disabled_by_env() -> bool:
    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    names = {x.strip() for x in disabled.split(",")}
    return n.ENTRY_POINT_NAME in names or "*" in names


def pre_instrument() -> None:
    """``opentelemetry_pre_instrument`` entry point: patch before any instrumentor runs. Never raises."""
    global _auto  # noqa: PLW0603
    try:
        if _disabled_by_env():
            return
        _auto = True
        _patch_instrumentors()
        _provide_if_unconfigured()
    except Exception:
        _log.exception("alephant_otel: pre-instrument step failed; continuing without it")


def _provide_if_unconfigured() -> None:
    """Set up the SDK from the standard environment when ``opentelemetry-instrument`` has no configurator.

    Without ``opentelemetry-distro`` (or another distro) nothing creates a
    tracer provider and ``OTEL_TRACES_EXPORTER`` is ignored: spans go nowhere.
    When the environment asks for spans to be exported, do what
    ``configure()`` does for a plain script; otherwise leave the app to set
    its own provider up.
    """
    if isinstance(trace.get_tracer_provider(), SdkTracerProvider):
        return
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if (exporters and exporters != "none") or os.environ.get(n.ENV_TRACE_FILE, "").strip():
        trace.set_tracer_provider(_new_provider())
        install_sigterm_flush(env_sigterm_flush(os.environ))


def hook_for_tests(tracer_provider: SdkTracerProvider) -> None:
    """Set the hooks up with the environment's settings if nothing has, without claiming the instrumentor.

    For the ``alephant_gateway`` fixture: code under test that calls
    ``configure()`` or ``AlephantInstrumentor().instrument(...)`` afterwards
    then configures exactly as it would outside the test. ``tracer_provider``
    (the global one) gets the span processor either way, so the fixture sees
    its spans even when an earlier test configured another provider.
    """
    with _lock:
        _join_provider(tracer_provider)
        if _bridge is None:
            _install(resolve_settings(), tracer_provider, None, instrument_new=True)


def configure(
    *,
    gateway_url: str | Iterable[str] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    trace_file: str | os.PathLike[str] | None = None,
    cost_header: str | None = None,
    baggage_hosts: Iterable[str] | None = None,
    scrub_patterns: Iterable[str] | None = None,
    sigterm_flush: bool | None = None,
    agents_integration: bool | None = None,
) -> trace.TracerProvider:
    """Make a plain script traced, in one idempotent call.

    Sets up an SDK tracer provider if the app has none (with exporters from
    the standard ``OTEL_*`` variables: ``OTEL_TRACES_EXPORTER``, or OTLP when
    ``OTEL_EXPORTER_OTLP_ENDPOINT``/``..._TRACES_ENDPOINT`` is set), the local
    trace file where asked, :class:`AlephantSpanProcessor`, and the gateway
    header hooks on httpx and httpx2. Calling it again updates the settings
    without adding processors twice.

    Args:
        gateway_url: One or more gateway base URLs (a list or a
            comma-separated string). Only these hosts get alephant-* headers.
            Default: ``ALEPHANT_GATEWAY_URL``, else ``https://ai.alephant.io``.
        tracer_provider: Use this provider instead of the global one.
        meter_provider: Where GenAI metrics go (default: the global one).
        trace_file: Append spans to this OTLP/JSON lines file (default:
            ``ALEPHANT_TRACE_FILE``; unset means no file). A later call
            with another path switches files; one without stops writing.
            A path that is not a regular file (a FIFO, a directory, a
            device other than ``/dev/null``) gets no spans and one warning.
        cost_header: Response header with the gateway-reported cost
            (default ``x-litellm-response-cost``).
        baggage_hosts: Turn baggage scoping on: ``alephant.*`` baggage is
            then sent only to these (internal) hosts, never to the gateway
            or third parties. Default: ``ALEPHANT_SCOPE_BAGGAGE``; unset
            keeps OpenTelemetry's default propagation.
        scrub_patterns: More names whose values are credentials (regular
            expressions, searched case-insensitively in attribute keys,
            header and query parameter names and ``name=value`` pairs), on
            top of the built-in list; ``ALEPHANT_SCRUB_PATTERNS``
            (comma-separated) adds its own. Every exported span is scrubbed.
        sigterm_flush: When SIGTERM's handler is the default (and this is the
            main thread), install one that flushes the spans, for at most 1 s,
            then ends the process by SIGTERM as before. A handler the app set
            is never replaced. Default: ``ALEPHANT_SIGTERM_FLUSH``, else on;
            ``False`` removes the handler this package installed.
        agents_integration: With the OpenAI Agents SDK installed, each of its
            agent spans becomes a :func:`run` (a trace processor is added when
            ``agents`` is imported; the SDK's own processors stay). Default:
            ``ALEPHANT_AGENTS_INTEGRATION``, else on.

    Returns:
        The tracer provider in use.

    Raises:
        ValueError: An argument is invalid (e.g. a gateway URL without scheme).
    """
    settings = resolve_settings(
        gateway_url=gateway_url,
        trace_file=trace_file,
        cost_header=cost_header,
        baggage_hosts=baggage_hosts,
        scrub_patterns=scrub_patterns,
        sigterm_flush=sigterm_flush,
        agents_integration=agents_integration,
    )
    with _lock:
        provider: Any = tracer_provider
        if provider is None:
            provider = trace.get_tracer_provider()
            if not isinstance(provider, SdkTracerProvider):
                provider = _new_provider()
                trace.set_tracer_provider(provider)
        instrumentor = AlephantInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            _install(settings, provider, meter_provider, instrument_new=True)
        else:
            instrumentor.instrument(
                tracer_provider=provider,
                meter_provider=meter_provider,
                gateway_url=list(settings.gateway_urls),
                trace_file=settings.trace_file,
                cost_header=settings.cost_header,
                baggage_hosts=settings.baggage_hosts,
                scrub_patterns=settings.scrub_patterns,
                agents_integration=settings.agents_integration,
            )
        install_sigterm_flush(settings.sigterm_flush)
        result: trace.TracerProvider = provider
        return result


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
