"""A tool call of a session (an ``execute_tool`` span written by ``tool()``), as the analytics keep it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from alephant_otel.analytics._model import SpanRecord

__all__ = ["ToolStep"]


@dataclass(slots=True, eq=False)
class ToolStep:
    """One tool call: a step of its run beside the model requests, with its cost when it was paid."""

    name: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    call_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    cost_usd: float = 0.0
    error: bool = False
    status_message: str = ""

    @classmethod
    def from_record(cls, r: SpanRecord) -> ToolStep:
        """The tool call a tool span describes."""
        name = r.tool_name
        if name is None:  # a span without gen_ai.tool.name: the name after the operation
            name = r.name.partition(" ")[2] or r.name
        return cls(
            sys.intern(name),
            r.span_id,
            r.parent_span_id,
            r.start_ns,
            r.end_ns,
            r.tool_call_id,
            r.run_id,
            r.agent_id,
            r.cost_usd or 0.0,
            r.error,
            r.status_message,
        )

    @property
    def latency_s(self) -> float:
        """Duration of the tool call in seconds."""
        return max(0, self.end_ns - self.start_ns) / 1e9
