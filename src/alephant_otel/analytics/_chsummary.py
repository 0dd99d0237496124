"""The ClickHouse source's summaries: its SQL rows made into the model's sessions and vitals.

``sessions list`` and ``vitals`` of :class:`~._clickhouse.ClickHouseSource`
run here. A limited list is two queries (``_chqueries.pick_sql``, then the
chosen sessions' full rows); vitals add per-session latencies, the groups by
agent and by model, and the chosen sessions' tool calls, all computed by the
server over the chosen sessions' spans only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from alephant_otel.analytics import _chqueries as chq
from alephant_otel.analytics._model import Request, Rollup, Run, Session, _Totals
from alephant_otel.analytics._summary import Listing, Selection
from alephant_otel.analytics._toolstep import ToolStep
from alephant_otel.analytics._vitals import GroupVitals, Vitals, VitalsConfig, _order, assemble_vitals

__all__ = ["Queries", "list_rows", "listing", "session_from_row", "vitals"]

_NO_LIMIT: Final = 2**63 - 1
_META: Final = len("alephant.metadata.")


class Queries(Protocol):
    """What the summaries need of the source: its queries, its table, its description."""

    table: str
    description: str
    corrupt: int

    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, *, prune: bool = False
    ) -> list[dict[str, Any]]: ...

    def has_rollup(self) -> bool: ...

    def notes(self, rollup: bool) -> list[str]: ...


def _sort(key: str) -> str:
    if key not in chq.SORT_SQL:
        raise ValueError(f"bad sort key {key!r}: one of {', '.join(chq.SORT_SQL)}")
    return key


def _base(sel: Selection) -> dict[str, Any]:
    now = time.time_ns() if sel.now_ns is None else sel.now_ns
    return {"now_ns": now, "window_ns": int(sel.active_window_s * 1e9)}


def _filters(sel: Selection) -> dict[str, Any]:
    """The filters that are set, by name: each is one bound parameter of the SQL."""
    values = {
        "since_ns": sel.since_ns,
        "until_ns": sel.until_ns,
        "agent": sel.agent,
        "path": sel.path,
        "status": sel.status,
        "min_cost": sel.min_cost,
        "user": sel.user,
    }
    return {k: v for k, v in values.items() if v is not None}


def count(src: Queries, rollup: bool) -> tuple[int, int, int]:
    """Sessions, corrupt numbers and requests outside sessions in all, for an answer that selected
    none ("0 of N sessions")."""
    sql = chq.pick_sql(src.table, rollup=rollup, sort="started")
    rows = src.query(
        f"SELECT max(seen) AS n, max(corrupt_all) AS c, max(outside_n) AS o FROM ({sql})",
        {**_base(Selection()), "limit": 1},
        prune=True,
    )
    if not rows or rows[0]["n"] is None:
        return 0, 0, 0
    return int(rows[0]["n"]), int(rows[0]["c"]), int(rows[0]["o"])


def _totals(row: Mapping[str, Any]) -> tuple[int, int, int]:
    return int(row["seen"]), int(row["corrupt_all"]), int(row["outside_n"])


def list_rows(src: Queries, sel: Selection, rollup: bool) -> tuple[list[dict[str, Any]], tuple[int, int, int]]:
    """The listed sessions' rows in order; the sessions, corrupt numbers and outside requests in all."""
    sort, filters, base = _sort(sel.sort), _filters(sel), _base(sel)
    if sel.limit:
        pick = chq.pick_sql(src.table, rollup=rollup, sort=sort, filters=filters)
        picked = src.query(pick, {**base, **filters, "limit": sel.limit}, prune=True)
        if not picked:
            return [], count(src, rollup)
        sids = [str(r["sid"]) for r in picked]
        sql = chq.list_sql(src.table, rollup=rollup, sort=sort, chosen=True, limit=False)
        rows = src.query(sql, {**base, "sids": sids})
        return rows, _totals(picked[0])
    sql = chq.list_sql(src.table, rollup=rollup, sort=sort, filters=filters, limit=False)
    rows = src.query(sql, {**base, **filters})
    if not rows:
        return [], count(src, rollup)
    return rows, _totals(rows[0])


def _outside(src: Queries, sel: Selection, rollup: bool, known: int) -> list[Request]:
    # ``known``: how many there are in all; with none, a scan of every span (without the roll-up)
    # is saved: 14 s at 10M spans.
    if sel.narrowed or not known:
        return []
    rows = src.query(chq.outside_sql(src.table, rollup), {"since_ns": sel.since_ns, "until_ns": sel.until_ns})
    out = []
    for r in rows:
        req = Request(None, r["trace_id"], r["span_id"], None, "", int(r["start_ns"]), int(r["end_ns"]))
        req.agent_id = r["agent"] or None
        req.retry_attempt = int(r["retry"])
        req.error = bool(r["error"])
        req.intercepted = bool(r["icpt"])
        req.cost_usd = float(r["cost"])
        req.input_tokens = int(r["inp"])
        req.output_tokens = int(r["outp"])
        out.append(req)
    return out


def _tools(src: Queries, sessions: Sequence[Session]) -> None:
    """Each session's tool calls (those that have some), in start order, from their spans."""
    chosen = _chosen([s for s in sessions if s.tool_calls])
    if not chosen["sids"]:
        return
    by_sid: dict[str, list[ToolStep]] = {}
    for r in src.query(chq.vitals_tools_sql(src.table), chosen):
        by_sid.setdefault(str(r["sid"]), []).append(
            ToolStep(
                str(r["tool"]),
                str(r["span_id"]),
                r["parent_id"] or None,
                int(r["start_ns"]),
                int(r["end_ns"]),
                r["call_id"],
                r["run_id"],
                r["agent"] or None,
                float(r["cost"]),
                bool(r["error"]),
                str(r["message"] or ""),
            )
        )
    for s in sessions:
        s.tools = by_sid.get(s.session_id, [])


def _chosen(sessions: Sequence[Session]) -> dict[str, list[str]]:
    """The parameters that name the spans of ``sessions``: their ids and their traces' (both indexed)."""
    traces = sorted({t for s in sessions for t in s.trace_ids})
    return {"sids": [s.session_id for s in sessions], "traces": traces}


def listing(src: Queries, sel: Selection, *, notes: bool = True) -> tuple[Listing, list[dict[str, Any]]]:
    """What ``sessions list`` shows, from the roll-up when there is one; and the listed rows."""
    rollup = src.has_rollup()
    rows, (seen, corrupt, outside) = list_rows(src, sel, rollup)
    sessions = [session_from_row(r) for r in rows]
    _tools(src, sessions)
    said = src.notes(rollup) if notes else []
    found = Listing(sessions, seen, src.description, src.corrupt, corrupt, _outside(src, sel, rollup, outside), said)
    return found, rows


def _group(g: Mapping[str, Any]) -> GroupVitals:
    return GroupVitals(
        str(g["key"]),
        int(g["sessions"]),
        int(g["requests"]),
        float(g["cost"]),
        int(g["inp"]),
        int(g["outp"]),
        int(g["retries"]),
        int(g["intercepted"]),
        int(g["errors"]),
    )


def _agents_with_tools(by_agent: list[GroupVitals], sessions: Iterable[Session], req_agents: Mapping[str, Any]) -> None:
    """A paid tool's cost is its agent's too (as ``_vitals``): the groups add up to the total."""
    groups = {g.key: g for g in by_agent}
    for s in sessions:
        with_requests = set(req_agents.get(s.session_id) or ())
        for step in s.tools:
            key = step.agent_id or "(none)"
            g = groups.get(key)
            if g is None:
                g = groups[key] = GroupVitals(key)
                by_agent.append(g)
            if key not in with_requests:
                with_requests.add(key)
                g.sessions += 1
            g.cost_usd += step.cost_usd


def vitals(src: Queries, sel: Selection, config: VitalsConfig) -> tuple[Vitals, Listing]:
    """Vitals from the server: the list's rows, then per-session latency percentiles and the groups
    by agent and by model over the chosen sessions' requests (their ids sent as a bound array)."""
    found, rows = listing(src, sel, notes=False)
    chosen = _chosen(found.sessions)
    per = {r["sid"]: r for r in src.query(chq.vitals_sessions_sql(src.table), chosen)} if rows else {}
    none = {"lat_p50": 0.0, "lat_p95": 0.0, "lat_max": 0.0, "has_requests": False, "reasons": []}
    stats, reasons = [], []
    for s in found.sessions:
        r = per.get(s.session_id, none)
        stats.append((float(r["lat_p50"]), float(r["lat_p95"]), float(r["lat_max"]), bool(r["has_requests"])))
        reasons.append(sorted(x for x in r["reasons"] or () if x))
    failed = [0 if r["from_rollup"] else int(r["failed"]) for r in rows]
    groups = src.query(chq.vitals_groups_sql(src.table), chosen) if rows else []
    by_agent = [_group(g) for g in groups if g["dim"] == "agent"]
    _agents_with_tools(by_agent, found.sessions, {k: r.get("req_agents") for k, r in per.items()})
    overall = next((g for g in groups if not g["dim"]), None)
    p50 = float(overall["p50"]) if overall else 0.0
    p95 = float(overall["p95"]) if overall else 0.0
    result = assemble_vitals(found.sessions, stats, reasons, failed, by_agent, p50, p95, config)
    result.groups["model"] = sorted((_group(g) for g in groups if g["dim"] == "model"), key=_order)
    return result, found


def _metadata(r: Mapping[str, Any]) -> dict[str, str]:
    """A session span's metadata, else the other spans' (the earliest span's value of a key wins)."""
    own = r.get("ss_meta") or ()
    if own:
        return {str(k)[_META:]: str(v) for k, v in own}
    merged: dict[str, str] = {}
    for _, meta in sorted(r.get("meta_spans") or (), key=lambda x: x[0]):
        for k, v in meta:
            merged.setdefault(str(k)[_META:], str(v))
    return merged


def session_from_row(r: Mapping[str, Any]) -> Session:
    """A summary :class:`Session` from one row of ``list_sql``: totals, runs (flat), agents, status."""
    s = Session(
        session_id=str(r["sid"]),
        name=r["name"],
        path=r["path"],
        status=r["status"],
        start_ns=int(r["start_ns"]),
        end_ns=int(r["ss_end"]) or None,
        last_activity_ns=int(r["last_ns"]),
        span_present=bool(r["span_present"]),
        totals_from_rollup=bool(r["from_rollup"]),
    )
    if r["rollups"]:
        s.rollup = Rollup(
            int(r["r_requests"]),
            int(r["r_retries"]),
            int(r["r_intercepted"]),
            float(r["r_cost"]),
            int(r["r_input"]),
            int(r["r_output"]),
        )
    s._totals = _Totals(
        int(r["t_requests"]),
        int(r["t_retries"]),
        int(r["t_errors"]),
        int(r["t_intercepted"]),
        float(r["t_cost"]),
        int(r["t_input"]),
        int(r["t_output"]),
        int(r["t_tools"]),
    )
    s.agents = [str(a) for a in r["agent_list"]]
    s.trace_ids = [str(t) for t in r["trace_list"]]
    s.runs = [Run(run_id=str(rid)) for rid in r["run_ids"]]
    s.user_id = r["uid"]
    s.metadata = _metadata(r)
    return s
