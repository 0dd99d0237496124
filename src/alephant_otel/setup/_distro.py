"""The zero-code way in: the ``opentelemetry-instrument`` entry points (instrumentor, pre-instrument)."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from alephant_otel import _names as n
from alephant_otel.setup._config import Settings, env_sigterm_flush, resolve_settings
from alephant_otel.setup._exits import install_sigterm_flush
from alephant_otel.setup._hooking import _lock, _patch_instrumentors, set_bridge
from alephant_otel.setup._install import _install, _new_provider
from alephant_otel.wire import _scoping

if TYPE_CHECKING:
    pass

__all__ = ["AlephantInstrumentor", "pre_instrument"]

_log = logging.getLogger(__name__)

_auto = False  # set by the pre-instrument entry point under opentelemetry-instrument


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
    ``baggage_hosts``, ``scrub_patterns``, ``agents_integration``, ``capture_content``,
    ``content_message_limit``, ``content_span_limit`` (see :func:`configure`).

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
                capture_content=kwargs.get("capture_content"),
                content_message_limit=kwargs.get("content_message_limit"),
                content_span_limit=kwargs.get("content_span_limit"),
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
        with _lock:
            set_bridge(None)
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
