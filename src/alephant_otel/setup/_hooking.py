"""Our hooks in the OTel httpx/httpx2 instrumentors, chained to the user's own, on every client.

The instrumentors take one request hook and one response hook each; the trampolines here read the
active :class:`~alephant_otel.wire._hooks.Bridge` (``configure()`` can replace it) and call the
hooks the app passed first.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from alephant_otel.context._scope import use_instruments
from alephant_otel.wire._aiotransports import follow_httpx_instrumentation, follows_instrumentation
from alephant_otel.wire._hooks import Bridge

if TYPE_CHECKING:
    pass

__all__ = ["active_bridge", "set_bridge"]

_log = logging.getLogger(__name__)

_lock = threading.RLock()


_bridge: Bridge | None = None


_patched = False


# Client instrumentor class -> (tracer provider it was instrumented with, the caller's own hooks).
_hooked: dict[type, tuple[Any, dict[str, Any]]] = {}


_HOOK_NAMES = ("request_hook", "response_hook", "async_request_hook", "async_response_hook")


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


def set_bridge(bridge: Bridge | None) -> None:
    """Make ``bridge`` the one the hooks call (``None``: the hooks do nothing)."""
    global _bridge  # noqa: PLW0603 - the hooks read the active bridge
    with _lock:
        _bridge = bridge
        use_instruments(None if bridge is None else bridge.instruments)


def active_bridge() -> Bridge | None:
    """The bridge the hooks call now."""
    return _bridge
