"""The JSON documents of ``alephant-otel sessions ... --json`` (a stable schema).

Every document has ``"schema"`` (``alephant-otel/sessions.<verb>/1``; the
number changes only on an incompatible change; new keys may be added),
``"source"``, ``"corrupt_lines"`` and ``"corrupt_values"`` (costs and counts
dropped as impossible: NaN, infinite, negative, boolean, over 10^9 tokens or
$10^6 per request). Times are ISO 8601 UTC strings (``null``
when unknown), durations are seconds, costs USD floats, and counts integers.
The output is strict JSON: never ``NaN`` or ``Infinity`` (a cost whose sum
overflows is ``null``).

``sessions.list/1``::

    {"schema", "source", "corrupt_lines", "corrupt_values", "sessions_seen",
     "sessions": [SESSION, ...], "no_session": NO_SESSION}

NO_SESSION: the gateway requests made outside any session (no ``session()``
open; not counted in any SESSION), in the time range asked, zeros when none::

    {"request_count", "retries", "errors", "intercepted", "cost_usd",
     "input_tokens", "output_tokens", "first_started_at", "last_started_at"}

SESSION (also the top of ``show``)::

    {"session_id", "name", "path", "status": "active"|"completed"|"intercepted",
     "started_at", "ended_at", "last_activity_at", "duration_s",
     "agents": [str], "runs": int (all depths), "request_count", "retries",
     "errors", "intercepted", "cost_usd" (model requests plus paid tool calls),
     "input_tokens", "output_tokens", "tool_calls", "tool_cost_usd" (part of cost_usd),
     "requests_usage_unknown" (requests whose usage never arrived: not in the sums),
     "user_id": str | null, "metadata": {key: value}, "session_span": bool, "totals_from_rollup": bool,
     "rollup": ROLLUP | null, "rollup_matches": bool | null, "trace_ids": [str]}

``sessions.show/1``: ``{"schema", "source", "corrupt_lines", "session": SESSION
+ {"runs_tree": [RUN], "requests": [REQUEST] (outside any run), "tools": [TOOL]
(outside any run), "policy_events": [POLICY]}}`` with::

    RUN     = {"run_id", "agent_id", "name", "parent_run_id", "started_at", "ended_at",
               "latency_s", "run_span": bool, "request_count", "retries", "errors",
               "intercepted", "cost_usd", "input_tokens", "output_tokens",
               "requests_usage_unknown" (requests left out of the sums),
               "cost_share" (of the session, 0..1), "rollup": ROLLUP | null,
               "runs": [RUN], "requests": [REQUEST], "tool_calls" (all depths), "tools": [TOOL]}
    TOOL    = {"name", "call_id", "span_id", "started_at", "latency_s", "cost_usd",
               "cost_share", "error", "status_message"}
    REQUEST = {"request_id", "trace_id", "span_id", "name", "operation", "provider",
               "request_model", "response_model", "started_at", "latency_s",
               "input_tokens", "output_tokens", "cost_usd", "cost_source", "cost_share",
               "usage_unknown": str | null (why tokens, cost and share are null),
               "retry_attempt", "streaming", "error", "status_message",
               "http_status", "error_type", "intercepted", "incomplete", "policy_events": [POLICY]}
    POLICY  = {"reason", "code", "status"}
    ROLLUP  = {"requests", "retries", "intercepted", "cost_usd", "input_tokens", "output_tokens"}

``sessions.vitals/1``::

    {"schema", "source", "corrupt_lines", "sessions_seen",
     "totals": {"sessions", "by_status": {status: n}, "request_count", "retries",
                "errors" (ended in error, interceptions included), "failed" (errors not intercepted),
                "intercepted", "cost_usd", "input_tokens", "output_tokens",
                "latency_p50_s", "latency_p95_s", "latency_threshold_s"},
     "by_agent": [GROUP], "by_path": [GROUP],
     "by": {"dimension", "groups": [GROUP]} (with --by; for tool, request_count counts the calls),
     "sessions": [{"session_id", "path", "status", "cost_usd", "tokens", "request_count",
                   "retries", "latency_p50_s", "latency_p95_s", "latency_max_s",
                   "flags": [{"kind", "detail"}]}]}
    GROUP = {"key", "sessions", "request_count", "cost_usd", "input_tokens",
             "output_tokens", "retries", "intercepted", "errors"}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from alephant_otel.analytics._model import USAGE_UNKNOWN_REASON, PolicyEvent, Request, Rollup, Run, Session, iso
from alephant_otel.analytics._toolstep import ToolStep
from alephant_otel.analytics._vitals import GroupVitals, Vitals

__all__ = [
    "SCHEMA_LIST",
    "SCHEMA_SHOW",
    "SCHEMA_VITALS",
    "list_json",
    "no_session_json",
    "session_json",
    "session_notes",
    "show_json",
    "vitals_json",
]

SCHEMA_LIST = "alephant-otel/sessions.list/1"
SCHEMA_SHOW = "alephant-otel/sessions.show/1"
SCHEMA_VITALS = "alephant-otel/sessions.vitals/1"


def _r(x: float) -> float | None:
    # Every number read is finite (non-finite ones are dropped as corrupt), but a sum can overflow.
    return round(x, 12) if math.isfinite(x) else None


def _rollup(r: Rollup | None) -> dict[str, Any] | None:
    if r is None:
        return None
    doc = asdict(r)
    doc["cost_usd"] = _r(r.cost_usd)
    return doc


def _policy(e: PolicyEvent) -> dict[str, Any]:
    return {"reason": e.reason, "code": e.code, "status": e.status}


def session_json(s: Session) -> dict[str, Any]:
    """The SESSION object."""
    return {
        "session_id": s.session_id,
        "name": s.name,
        "path": s.path,
        "status": s.status,
        "started_at": iso(s.start_ns),
        "ended_at": iso(s.end_ns),
        "last_activity_at": iso(s.last_activity_ns),
        "duration_s": round(s.duration_s, 6),
        "agents": list(s.agents),
        "runs": sum(1 for _ in s.walk_runs()),
        "request_count": s.request_count,
        "retries": s.retries,
        "errors": s.errors,
        "intercepted": s.intercepted,
        "cost_usd": _r(s.cost_usd),
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "tool_calls": s.tool_calls,
        # Part of cost_usd: what the paid tool calls cost (the rest is model requests).
        "tool_cost_usd": _r(sum(t.cost_usd for t in s.tools)),
        "user_id": s.user_id,
        "metadata": dict(s.metadata),
        "requests_usage_unknown": s.usage_unknown,
        "session_span": s.span_present,
        "totals_from_rollup": s.totals_from_rollup,
        "rollup": _rollup(s.rollup),
        "rollup_matches": s.rollup_matches,
        "trace_ids": list(s.trace_ids),
    }


def session_notes(s: Session) -> list[str]:
    """What a reader should know about how this session was rebuilt (empty when nothing)."""
    notes = []
    if s.usage_unknown:
        notes.append(f"{s.usage_unknown} request(s) with usage unknown: {USAGE_UNKNOWN_REASON}; not in the totals")
    if not s.span_present:
        notes.append("no session span read: rebuilt from request/run spans")
    if s.totals_from_rollup:
        notes.append("no request spans read: totals from the session span's roll-up")
    elif s.rollup_matches is False:
        notes.append("the session span's roll-up differs from the request spans (other processes or sampling)")
    return notes


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole > 0 and math.isfinite(whole) and math.isfinite(part) else 0.0


def _request_json(r: Request, total: float) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "name": r.name,
        "operation": r.operation,
        "provider": r.provider,
        "request_model": r.request_model,
        "response_model": r.response_model,
        "started_at": iso(r.start_ns),
        "latency_s": round(r.latency_s, 6),
        # Usage that never arrived is null with a reason, never 0: zero would read as a free call.
        "input_tokens": None if r.usage_unknown else r.input_tokens,
        "output_tokens": None if r.usage_unknown else r.output_tokens,
        "cost_usd": None if r.usage_unknown else _r(r.cost_usd),
        "cost_source": r.cost_source,
        "cost_share": None if r.usage_unknown else _share(r.cost_usd, total),
        "usage_unknown": USAGE_UNKNOWN_REASON if r.usage_unknown else None,
        "retry_attempt": r.retry_attempt,
        "streaming": r.streaming,
        "error": r.error,
        "status_message": r.status_message,
        "http_status": r.http_status,
        "error_type": r.error_type,
        "intercepted": r.intercepted,
        "incomplete": r.incomplete,
        "policy_events": [_policy(e) for e in r.policy_events],
    }


def _tool_json(t: ToolStep, total: float) -> dict[str, Any]:
    return {
        "name": t.name,
        "call_id": t.call_id,
        "span_id": t.span_id,
        "started_at": iso(t.start_ns),
        "latency_s": round(t.latency_s, 6),
        "cost_usd": _r(t.cost_usd),
        "cost_share": _share(t.cost_usd, total),
        "error": t.error,
        "status_message": t.status_message,
    }


def _run_json(run: Run, total: float) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "agent_id": run.agent_id,
        "name": run.name,
        "parent_run_id": run.parent_run_id,
        "started_at": iso(run.start_ns),
        "ended_at": iso(run.end_ns),
        "latency_s": round(run.latency_s, 6),
        "run_span": run.span_present,
        "request_count": run.request_count,
        "retries": run.retries,
        "errors": run.errors,
        "intercepted": run.intercepted,
        "cost_usd": _r(run.cost_usd),
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "requests_usage_unknown": run.usage_unknown,
        "cost_share": _share(run.cost_usd, total),
        "rollup": _rollup(run.rollup),
        "runs": [_run_json(c, total) for c in run.runs],
        "requests": [_request_json(r, total) for r in run.requests],
        "tool_calls": run.tool_calls,
        "tools": [_tool_json(t, total) for t in run.tools],
    }


def no_session_json(outside: Sequence[Request]) -> dict[str, Any]:
    """The NO_SESSION object: totals of the requests made outside any session."""
    return {
        "request_count": len(outside),
        "retries": sum(r.retried for r in outside),
        "errors": sum(r.error for r in outside),
        "intercepted": sum(r.intercepted for r in outside),
        "cost_usd": _r(sum(r.cost_usd for r in outside)),
        "input_tokens": sum(r.input_tokens for r in outside),
        "output_tokens": sum(r.output_tokens for r in outside),
        "first_started_at": iso(min((r.start_ns for r in outside), default=None)),
        "last_started_at": iso(max((r.start_ns for r in outside), default=None)),
    }


def list_json(
    sessions: list[Session],
    *,
    source: str,
    corrupt: int,
    seen: int,
    corrupt_values: int = 0,
    outside: Sequence[Request] = (),
) -> dict[str, Any]:
    """The ``sessions list --json`` document."""
    return {
        "schema": SCHEMA_LIST,
        "source": source,
        "corrupt_lines": corrupt,
        "corrupt_values": corrupt_values,
        "sessions_seen": seen,
        "sessions": [session_json(s) for s in sessions],
        "no_session": no_session_json(outside),
    }


def show_json(s: Session, *, source: str, corrupt: int, corrupt_values: int = 0) -> dict[str, Any]:
    """The ``sessions show --json`` document."""
    doc = session_json(s)
    doc["runs_tree"] = [_run_json(r, s.cost_usd) for r in s.runs]
    doc["requests"] = [_request_json(r, s.cost_usd) for r in s.direct_requests]
    doc["tools"] = [_tool_json(t, s.cost_usd) for t in s.direct_tools]
    doc["policy_events"] = [_policy(e) for e in s.policy_events]
    return {
        "schema": SCHEMA_SHOW,
        "source": source,
        "corrupt_lines": corrupt,
        "corrupt_values": corrupt_values,
        "session": doc,
    }


def _group(g: GroupVitals) -> dict[str, Any]:
    return {
        "key": g.key,
        "sessions": g.sessions,
        "request_count": g.requests,
        "cost_usd": _r(g.cost_usd),
        "input_tokens": g.input_tokens,
        "output_tokens": g.output_tokens,
        "retries": g.retries,
        "intercepted": g.intercepted,
        "errors": g.errors,
    }


def vitals_json(
    v: Vitals,
    *,
    source: str,
    corrupt: int,
    seen: int,
    corrupt_values: int = 0,
    by: tuple[str, list[GroupVitals]] | None = None,
) -> dict[str, Any]:
    """The ``sessions vitals --json`` document (with ``by``: the ``--by`` breakdown as well)."""
    doc = {
        "schema": SCHEMA_VITALS,
        "source": source,
        "corrupt_lines": corrupt,
        "corrupt_values": corrupt_values,
        "sessions_seen": seen,
        "totals": {
            "sessions": len(v.sessions),
            "by_status": dict(v.by_status),
            "request_count": v.requests,
            "retries": v.retries,
            "errors": v.errors,
            "failed": v.failed,
            "intercepted": v.intercepted,
            "cost_usd": _r(v.cost_usd),
            "input_tokens": v.input_tokens,
            "output_tokens": v.output_tokens,
            "latency_p50_s": round(v.latency_p50_s, 6),
            "latency_p95_s": round(v.latency_p95_s, 6),
            "latency_threshold_s": None if v.latency_threshold_s is None else round(v.latency_threshold_s, 6),
        },
        "by_agent": [_group(g) for g in v.by_agent],
        "by_path": [_group(g) for g in v.by_path],
        "sessions": [
            {
                "session_id": sv.session.session_id,
                "path": sv.session.path,
                "status": sv.session.status,
                "cost_usd": _r(sv.session.cost_usd),
                "tokens": sv.session.tokens,
                "request_count": sv.session.request_count,
                "retries": sv.session.retries,
                "latency_p50_s": round(sv.latency_p50_s, 6),
                "latency_p95_s": round(sv.latency_p95_s, 6),
                "latency_max_s": round(sv.latency_max_s, 6),
                "flags": [{"kind": f.kind, "detail": f.detail} for f in sv.flags],
            }
            for sv in v.sessions
        ],
    }
    if by is not None:
        doc["by"] = {"dimension": by[0], "groups": [_group(g) for g in by[1]]}
    return doc
