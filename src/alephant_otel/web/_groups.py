"""The list page's cost breakdown: the ``sessions vitals --by`` dimensions as a table and a chart.

The page offers the same groupings as the CLI (agent, path, user, tool,
model, ``metadata.KEY``) and computes them with the same function
(:func:`~alephant_otel.analytics._breakdown.breakdown`), so the page and
``sessions vitals --by`` print the same figures. Values here are plain data:
escaping is the templates' job and the script's (``textContent``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from alephant_otel.analytics import Session, Vitals
from alephant_otel.analytics._breakdown import DIMENSIONS, breakdown
from alephant_otel.analytics._render import money

__all__ = ["SUMMARY_DIMENSIONS", "choices", "group_rows", "points"]

#: What a summary source (ClickHouse: one row per session, no requests) can break down by, besides
#: ``metadata.KEY``: what its session rows carry. Model and tool need the requests and tool calls.
SUMMARY_DIMENSIONS: Final = ("agent", "path", "user")
#: At most this many metadata keys are offered as groupings (a session has at most 16).
_MAX_KEYS: Final = 24


def choices(sessions: Sequence[Session], current: str, *, summary: bool) -> list[str]:
    """The groupings the page offers: the fixed ones, then the metadata keys the sessions carry."""
    keys = sorted({k for s in sessions for k in s.metadata})[:_MAX_KEYS]
    out = [*(SUMMARY_DIMENSIONS if summary else DIMENSIONS), *(f"metadata.{k}" for k in keys)]
    if current not in out:  # a key typed into the URL that no session has: still the one shown
        out.append(current)
    return out


def group_rows(sessions: list[Session], by: str, vitals: Vitals) -> list[dict[str, Any]]:
    """The breakdown by ``by`` as the table shows it: one formatted row per group, costliest first."""
    groups = breakdown(sessions, by, vitals)
    total = sum(g.cost_usd for g in groups)
    return [
        {
            "key": g.key,
            "sessions": g.sessions,
            "requests": g.requests,
            "tokens": f"{g.input_tokens:,}/{g.output_tokens:,}",
            "cost": money(g.cost_usd),
            "share": f"{100 * g.cost_usd / total:.1f}%" if total > 0 else "-",
        }
        for g in groups
    ]


def points(sessions: Sequence[Session], by: str) -> list[tuple[int, str, float]]:
    """(start ns, group, cost) of every request and tool call, for the chart over time.

    The same attribution as :func:`breakdown`: a tool call counts under its agent, its
    session's path, user and metadata; ``model`` has no tool calls, ``tool`` no requests.
    """
    out: list[tuple[int, str, float]] = []
    key = by[len("metadata.") :] if by.startswith("metadata.") else ""
    for s in sessions:
        if by == "tool":
            out.extend((t.start_ns, t.name, t.cost_usd) for t in s.tools)
            continue
        if by == "model":
            out.extend((r.start_ns, r.model or "(none)", r.cost_usd) for r in s.requests)
            continue
        if by == "agent":
            out.extend((r.start_ns, r.agent_id or "(none)", r.cost_usd) for r in s.requests)
            out.extend((t.start_ns, t.agent_id or "(none)", t.cost_usd) for t in s.tools)
            continue
        group = s.path if by == "path" else s.user_id if by == "user" else s.metadata.get(key)
        label = group or "(none)"
        out.extend((r.start_ns, label, r.cost_usd) for r in s.requests)
        out.extend((t.start_ns, label, t.cost_usd) for t in s.tools)
    return out
