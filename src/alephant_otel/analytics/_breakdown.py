"""Cost breakdowns for ``sessions vitals --by``: by user, tool, model or one metadata key.

``agent`` and ``path`` are the two breakdowns vitals always computed (see
``_vitals``); the others group the same way: per session (user, a metadata
key), per request (model) or per tool call (tool). A session, request or
call without the dimension counts under ``(none)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from alephant_otel.analytics._model import Session
from alephant_otel.analytics._vitals import GroupVitals, Vitals, _order, per_request, per_session

__all__ = ["DIMENSIONS", "breakdown", "check_dimension"]

#: What ``--by`` takes, besides ``metadata.KEY``.
DIMENSIONS: Final = ("agent", "path", "user", "tool", "model")


def check_dimension(text: str) -> str:
    """``text`` if it names a breakdown, else ``ValueError`` saying which ones exist."""
    if text in DIMENSIONS or (text.startswith("metadata.") and len(text) > len("metadata.")):
        return text
    raise ValueError(f"unknown breakdown {text!r}: one of {', '.join(DIMENSIONS)} or metadata.KEY")


def _per_model(sessions: Iterable[Session]) -> list[GroupVitals]:
    return sorted(per_request(sessions, lambda r: r.model).values(), key=_order)


def _per_tool(sessions: Iterable[Session]) -> list[GroupVitals]:
    """Tool calls by tool name: ``requests`` counts the calls."""
    groups: dict[str, GroupVitals] = {}
    for s in sessions:
        seen: set[str] = set()
        for step in s.tools:
            g = groups.get(step.name)
            if g is None:
                g = groups[step.name] = GroupVitals(step.name)
            if step.name not in seen:
                seen.add(step.name)
                g.sessions += 1
            g.requests += 1
            g.cost_usd += step.cost_usd
            g.errors += step.error
    return sorted(groups.values(), key=_order)


def breakdown(sessions: list[Session], by: str, vitals: Vitals) -> list[GroupVitals]:
    """The cost of ``sessions`` grouped by ``by`` (see :func:`check_dimension`)."""
    if by in vitals.groups:  # computed by a summary source (its sessions hold no requests)
        return vitals.groups[by]
    if by == "agent":
        return vitals.by_agent
    if by == "path":
        return vitals.by_path
    if by == "user":
        return per_session(sessions, lambda s: s.user_id)
    if by == "model":
        return _per_model(sessions)
    if by == "tool":
        return _per_tool(sessions)
    key = check_dimension(by)[len("metadata.") :]
    return per_session(sessions, lambda s: s.metadata.get(key))
