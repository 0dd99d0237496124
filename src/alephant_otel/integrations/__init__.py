"""Agent framework integrations: each framework agent its own ``run()``.

- OpenAI Agents SDK (``openai-agents``, import name ``agents``): automatic.
  ``configure()`` and :class:`~alephant_otel.AlephantInstrumentor` add a trace
  processor (``agents.add_trace_processor``: the user's processors stay) the
  moment ``agents`` is imported, never before, so an app that does not use it
  pays nothing. Each agent span becomes a run (see
  :mod:`alephant_otel.integrations.openai_agents`). Off with
  ``ALEPHANT_AGENTS_INTEGRATION=false`` or ``configure(agents_integration=False)``.
- LangGraph: :func:`alephant_otel.integrations.langgraph.runs_for_nodes`.

Nothing here imports a framework that is not installed.
"""

from __future__ import annotations

import logging
import sys
import threading

from alephant_otel.integrations import _shared
from alephant_otel.integrations._shared import agent_id_for, agents_enabled

__all__ = ["agent_id_for", "agents_enabled", "set_agents_integration"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_hooked = False


def set_agents_integration(enabled: bool) -> None:
    """Turn the Agents SDK integration on or off; on, its processor is added when ``agents`` is imported.

    The SDK has no way to remove one processor, so off leaves an added processor in place,
    doing nothing. Never raises.
    """
    global _hooked  # noqa: PLW0603 - process-wide switch, set under the lock
    with _lock:
        _shared.enabled = enabled
        if not enabled or _hooked:
            return
        _hooked = True
    try:
        import wrapt

        # Runs now when agents is already imported, else right after its import.
        wrapt.register_post_import_hook(_on_agents_import, "agents")
    except Exception:
        _log.warning("alephant_otel: could not watch for the OpenAI Agents SDK; agent runs are not attributed")


def _on_agents_import(module: object) -> None:
    # Another package may be called "agents": only the OpenAI Agents SDK has this function.
    if not callable(getattr(module, "add_trace_processor", None)):
        return
    ours = sys.modules.get(f"{__name__}.openai_agents")
    if ours is not None and not hasattr(ours, "install"):
        return  # agents is being imported by that module itself: it installs at its end
    try:
        from alephant_otel.integrations.openai_agents import install

        install()
    except Exception:
        _log.warning(
            "alephant_otel: could not add the OpenAI Agents SDK trace processor; agent runs are not attributed",
            exc_info=True,
        )
