"""aiohttp-backed httpx transports follow the httpx / httpx2 instrumentation.

``opentelemetry-instrumentation-httpx`` instruments clients by wrapping
``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``.
The openai and anthropic SDKs' ``DefaultAioHttpClient`` (which their READMEs
recommend for concurrent async work) and the ``httpx-aiohttp`` package it is
vendored from send through their own ``AiohttpTransport``, which nothing
wraps: those requests got no span and no gateway header, silently.

Each such class is wrapped once, when its module is imported (nothing is
imported here), by :func:`_follow`: every call is handed to what the
instrumentation has put on ``AsyncHTTPTransport.handle_async_request`` of the
same httpx module at that moment. So these transports get the same span,
hooks, propagation and metrics as the client's default transport, and are on
or off with that instrumentation, with nothing to re-wire when it is
re-instrumented.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any, Final

import wrapt

__all__ = ["AIOHTTP_TRANSPORT_MODULES", "follow_httpx_instrumentation", "follows_instrumentation"]

_log = logging.getLogger(__name__)

#: Modules defining an ``AiohttpTransport`` (httpx or httpx2 flavour).
AIOHTTP_TRANSPORT_MODULES: Final = (
    "openai._vendor.httpx_aiohttp.transport",
    "anthropic._vendor.httpx_aiohttp.transport",
    "httpx_aiohttp.transport",
    "httpx_aiohttp.httpx2.transport",
)
_METHOD: Final = "handle_async_request"
_OTEL_WRAPPER: Final = "_handle_async_request_wrapper"
_followed: set[type] = set()


def follow_httpx_instrumentation() -> None:
    """Wrap each aiohttp transport class when (or if already) its module is imported.

    Idempotent: a class is wrapped once however often its hook runs.
    """
    for name in AIOHTTP_TRANSPORT_MODULES:
        wrapt.register_post_import_hook(_wrap_module, name)


def _wrap_module(module: ModuleType) -> None:
    # Runs inside the user's import statement: it must never raise.
    try:
        cls = getattr(module, "AiohttpTransport", None)
        base = _async_http_transport_of(cls)
        if cls is None or base is None or not callable(cls.__dict__.get(_METHOD)):
            return
        if isinstance(cls.__dict__[_METHOD], wrapt.ObjectProxy):
            return  # wrapped already
        wrapt.wrap_function_wrapper(cls, _METHOD, partial(_follow, base))
        _followed.add(cls)
    except Exception:
        _log.warning(
            "alephant_otel: could not instrument %s; its requests stay untraced", module.__name__, exc_info=True
        )


def follows_instrumentation(transport: object) -> bool:
    """Whether ``transport`` is one of the aiohttp transports wrapped here."""
    return any(cls in _followed for cls in type(transport).__mro__)


def _async_http_transport_of(cls: Any) -> type | None:
    """``AsyncHTTPTransport`` of the httpx module (httpx or httpx2) whose base transport ``cls`` implements."""
    if not isinstance(cls, type):
        return None
    for name in ("httpx2", "httpx"):
        httpx_module = sys.modules.get(name)
        if httpx_module is not None and issubclass(cls, httpx_module.AsyncBaseTransport):
            found: type = httpx_module.AsyncHTTPTransport
            return found
    return None


def _follow(
    base: type, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call ``wrapped`` the way the instrumentation calls ``base.handle_async_request`` now."""
    wrapper = getattr(base.__dict__.get(_METHOD), "_self_wrapper", None)
    if (
        isinstance(wrapper, partial)
        and getattr(wrapper.func, "__name__", None) == _OTEL_WRAPPER
        # instrument_client() wrapped this very transport: one span, not two.
        and _METHOD not in getattr(instance, "__dict__", ())
    ):
        return wrapper(wrapped, instance, args, kwargs)
    return wrapped(*args, **kwargs)
