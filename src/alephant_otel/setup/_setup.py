"""``configure()``: the way in with one call (the zero-code way: :mod:`._distro`; the hooks: :mod:`._hooking`).

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
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from alephant_otel.setup._config import resolve_settings
from alephant_otel.setup._distro import AlephantInstrumentor
from alephant_otel.setup._exits import install_sigterm_flush
from alephant_otel.setup._hooking import _lock, active_bridge
from alephant_otel.setup._install import _install, _join_provider, _new_provider

if TYPE_CHECKING:
    pass


__all__ = ["configure"]


_log = logging.getLogger(__name__)


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
        if active_bridge() is None:
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
    capture_content: bool | str | None = None,
    content_message_limit: int | None = None,
    content_span_limit: int | None = None,
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
        capture_content: Record prompts and completions on request spans
            (``gen_ai.input.messages``, ``gen_ai.output.messages``,
            ``gen_ai.system_instructions``), scrubbed and capped: ``True``,
            ``False``, or ``"SPAN_ONLY"``, ``"EVENT_ONLY"``,
            ``"SPAN_AND_EVENT"``, ``"NO_CONTENT"``. Default:
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off.
        content_message_limit: Bytes of JSON one captured message may take
            (default ``ALEPHANT_CONTENT_MESSAGE_LIMIT``, else 16384).
        content_span_limit: Bytes of JSON all of one span's content may take
            (default ``ALEPHANT_CONTENT_SPAN_LIMIT``, else 65536).

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
        capture_content=capture_content,
        content_message_limit=content_message_limit,
        content_span_limit=content_span_limit,
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
                capture_content=capture_content,
                content_message_limit=content_message_limit,
                content_span_limit=content_span_limit,
            )
        install_sigterm_flush(settings.sigterm_flush)
        result: trace.TracerProvider = provider
        return result
