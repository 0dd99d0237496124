"""OpenAI Agents SDK: each agent span becomes a ``run()``.

Added by ``configure()`` / ``AlephantInstrumentor`` when ``agents`` is imported
(see :mod:`alephant_otel.integrations`); import this module only with the SDK
installed.

Why a trace processor: the SDK runs each ``RunHooks``/``AgentHooks`` callback as
an asyncio task of its own, so a ``run()`` entered there is gone before the
model call. A processor's ``on_span_start``/``on_span_end`` are called
synchronously, from the runner's own task, around everything the agent does:
the run entered there is the context its model calls, tools (``asyncio.to_thread``
copies it into the SDK's worker threads) and nested agents run in.

- Agent id: the agent's ``name`` when it is a valid id, else the name made one
  (:func:`~alephant_otel.integrations.agent_id_for`: ``"Triage agent"`` is
  ``Triage_agent``). The run span is named after the agent's name.
- A handoff ends the agent span and starts the next one: one run ends, the next
  starts. An agent used as a tool runs inside the calling agent's span: a child run.
- Tool spans stay the SDK's.
- Independent of the SDK's own export (its key, its processors): this
  processor is added beside them, and added back when the app replaces them
  (``set_trace_processors``). With SDK tracing disabled (``set_tracing_disabled``,
  ``OPENAI_AGENTS_DISABLE_TRACING``, ``RunConfig(tracing_disabled=True)``) no
  span starts, so runs cannot be attributed: that is logged once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from agents import add_trace_processor
from agents.tracing import Span, Trace, TracingProcessor, get_trace_provider

from alephant_otel.context import _context
from alephant_otel.context._validate import is_valid
from alephant_otel.integrations._shared import agent_id_for, agents_enabled

__all__ = ["AgentRunError", "AgentRunProcessor", "agent_id_for", "install"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_installed: AgentRunProcessor | None = None
_warned_disabled = False


class AgentRunError(Exception):
    """The error an SDK agent span ended with, recorded on its run span."""


class AgentRunProcessor(TracingProcessor):
    """A trace processor that opens a ``run()`` when an agent span starts and closes it when it ends."""

    def __init__(self) -> None:
        self._open: dict[str, contextlib.AbstractContextManager[Any]] = {}
        self._lock = threading.Lock()

    def on_trace_start(self, trace: Trace) -> None:
        """Nothing: a trace is the SDK's, not an agent."""

    def on_trace_end(self, trace: Trace) -> None:
        """Nothing: a trace is the SDK's, not an agent."""

    def on_span_start(self, span: Span[Any]) -> None:
        """Enter the agent's run in the context the runner goes on in. Never raises."""
        try:
            data = span.span_data
            if getattr(data, "type", None) != "agent" or not agents_enabled():
                return
            name = getattr(data, "name", None)
            agent_id = agent_id_for(name)
            label = name if isinstance(name, str) and is_valid("name", name) else agent_id
            # The scope itself, not the _Scope wrapper: it is exited by this object, by span id.
            cm = _context.run(agent_id=agent_id, name=label)._open()
            cm.__enter__()
            with self._lock:
                self._open[span.span_id] = cm
        except Exception:
            _log.debug("alephant_otel: could not open a run for an agent span", exc_info=True)

    def on_span_end(self, span: Span[Any]) -> None:
        """Exit the run that this agent span opened (failed when the span has an error). Never raises."""
        try:
            with self._lock:
                cm = self._open.pop(span.span_id, None)
            if cm is None:
                return
            error = span.error
            if error:
                # The run span records it and ends with status ERROR; the exception goes no further.
                detail = (error.get("data") or {}).get("error") if isinstance(error.get("data"), dict) else None
                exc = AgentRunError(
                    f"{error.get('message') or 'agent failed'}: {detail}" if detail else error.get("message")
                )
                cm.__exit__(AgentRunError, exc, None)
            else:
                cm.__exit__(None, None, None)
        except Exception:
            _log.debug("alephant_otel: could not close the run of an agent span", exc_info=True)

    def shutdown(self) -> None:
        """Nothing to flush: runs end with their spans."""

    def force_flush(self) -> None:
        """Nothing to flush: runs end with their spans."""


def _warn_disabled() -> None:
    global _warned_disabled  # noqa: PLW0603 - a flag, set once
    if not _warned_disabled and agents_enabled():
        _warned_disabled = True
        _log.warning(
            "alephant_otel: OpenAI Agents SDK tracing is disabled, so agent runs cannot be attributed "
            "(no Alephant-Agent-Id / Alephant-Run-Id); session() still works. Keep SDK tracing on "
            "(its export can stay off) to attribute them"
        )


def _watch_provider(processor: AgentRunProcessor) -> None:
    """Say once when the SDK creates a disabled trace; stay on when the app replaces the processors.

    A disabled trace (``set_tracing_disabled``, the environment, ``RunConfig``) starts no
    span, so no agent run can be opened. ``set_trace_processors`` replaces every processor,
    this one included: it is added back after, beside the app's.
    """
    import wrapt
    from agents.tracing.traces import NoOpTrace

    provider_type = type(get_trace_provider())

    def create_trace(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        if isinstance(result, NoOpTrace):
            _warn_disabled()
        return result

    def set_processors(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            instance.register_processor(processor)
        except Exception:
            _log.debug("alephant_otel: could not add the agent run processor back", exc_info=True)
        return result

    wrapt.wrap_function_wrapper(provider_type, "create_trace", create_trace)
    wrapt.wrap_function_wrapper(provider_type, "set_processors", set_processors)


def install() -> AgentRunProcessor:
    """Add the processor to the SDK (once per process) and return it."""
    global _installed  # noqa: PLW0603 - one processor per process
    with _lock:
        if _installed is None:
            _installed = AgentRunProcessor()
            add_trace_processor(_installed)
            try:
                _watch_provider(_installed)
            except Exception:
                _log.debug("alephant_otel: cannot watch for disabled SDK tracing", exc_info=True)
        return _installed


# Imported before agents (by the app, or a test): agents' import hook found this module
# half made and left the install to here.
if agents_enabled():
    install()
