"""What the framework integrations share: agent ids from framework names, and the Agents SDK switch."""

from __future__ import annotations

import re
from typing import Final

from alephant_otel.context._validate import MAX_ID_LENGTH, is_valid

__all__ = ["agent_id_for", "agents_enabled"]

_OTHER: Final = re.compile(r"[^\x21-\x7e]+")
#: Whether the Agents SDK integration is on; set by :func:`alephant_otel.integrations.set_agents_integration`.
enabled = False


def agent_id_for(name: object) -> str:
    """The agent id for a framework's agent or node name.

    The name itself when it is a valid id (visible ASCII, no spaces, at most 256
    characters); otherwise each run of other characters (spaces, non-ASCII, control
    characters) becomes one ``_``, the ends are trimmed and it is cut at 256
    characters; ``agent`` when nothing is left.

    Examples:
        >>> agent_id_for("triage"), agent_id_for(" Triage  agent "), agent_id_for("Übersetzer")
        ('triage', 'Triage_agent', 'bersetzer')
    """
    text = name if isinstance(name, str) else ""
    if is_valid("id", text):
        return text
    return _OTHER.sub("_", text).strip("_")[:MAX_ID_LENGTH] or "agent"


def agents_enabled() -> bool:
    """Whether the OpenAI Agents SDK integration is on (the processor checks it at every agent span)."""
    return enabled
