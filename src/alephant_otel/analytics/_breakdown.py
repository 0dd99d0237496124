"""Cost breakdowns for ``sessions vitals --by``: by user, tool, model or one metadata key.

``agent`` and ``path`` are the two breakdowns vitals always computed (see
``_vitals``); the others group the same way: per session (user, a metadata
key), per request (model) or per tool call (tool). A session, request or
call without the dimension counts under ``(none)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from alephant_otel.analytics._model import Session
from alephant_otel.analytics._vitals import GroupVitals, Vitals

__all__ = ["DIMENSIONS", "breakdown", "check_dimension"]

#: What ``--by`` takes, besides ``metadata.KEY``.
DIMENSIONS: Final = ("agent", "path", "user", "tool", "model")
_NONE: Final = "(none)"


def check_dimension(text: str) -> str:
    """``text`` if it names a breakdown, else ``ValueError`` saying which ones exist."""
    if text in DIMENSIONS or (text.startswith("metadata.") and len(text) > len("metadata.")):
        return text
    raise ValueError(f"unknown breakdown {text!r}: one of {', '.join(DIMENSIONS)} or metadata.KEY")


def _order(g: GroupVitals) -> tuple[float, int, str]:
    return (-g.cost_usd, -(g.input_tokens + g.output_tokens), g.key)


def _per_session(sessions: Iterable[Session], key_of: Callable[[Session], str | None]) -> list[GroupVitals]:
    groups: dict[str, GroupVitals] = {}
    for s in sessions:
        key = key_of(s) or _NONE
        g = groups.get(key)
        if g is None:
            g = groups[key] = GroupVitals(key)
        g.sessions += 1
        g.requests += s.request_count
        g.cost_usd += s.cost_usd
        g.input_tokens += s.input_tokens
        g.output_tokens += s.output_tokens
        g.retries += s.retries
        g.intercepted += s.intercepted
        g.errors += s.errors
    return sorted(groups.values(), key=_order)


def _per_model(sessions: Iterable[Session]) -> list[GroupVitals]:
    groups: dict[str, GroupVitals] = {}
    for s in sessions:
        seen: set[str] = set()
        for req in s.requests:
            key = req.model or _NONE
            g = groups.get(key)
            if g is None:
                g = groups[key] = GroupVitals(key)
            if key not in seen:
                seen.add(key)
                g.sessions += 1
            g.requests += 1
            g.cost_usd += req.cost_usd
            g.input_tokens += req.input_tokens
            g.output_tokens += req.output_tokens
            g.retries += req.retried
            g.intercepted += req.intercepted
            g.errors += req.error
    return sorted(groups.values(), key=_order)


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
    if by == "agent":
        return vitals.by_agent
    if by == "path":
        return vitals.by_path
    if by == "user":
        return _per_session(sessions, lambda s: s.user_id)
    if by == "model":
        return _per_model(sessions)
    if by == "tool":
        return _per_tool(sessions)
    key = check_dimension(by)[len("metadata.") :]
    return _per_session(sessions, lambda s: s.metadata.get(key))
