"""The read queries of the ClickHouse source: the list, the requests outside sessions, vitals, show.

Built on the per-span columns and the session aggregates of ``_chsql``. The
text of a query depends only on the table names (checked identifiers), the
sort key (a fixed table) and *which* filters are set; every value is a bound
parameter (``{name:Type}``), never text put into the SQL.

The list runs in two steps when it is limited (``sessions list --limit 20``):
:func:`pick_sql` reads only the columns the filters and the sort need (the
server's analyzer drops the other aggregates: the maps of agents, traces and
run ids cost 4x the sums) and returns the chosen ids in order; then
:func:`list_sql` with ``chosen`` computes every figure of those sessions
alone, reaching them through the roll-up's primary key or, over the spans,
the exporter's bloom-filter index on attribute values.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from alephant_otel import _names as n
from alephant_otel.analytics._chsql import FAR, ROLLUP_SUFFIX, aggregates, quoted, spans_from

__all__ = [
    "FILTERS",
    "SORT_SQL",
    "list_sql",
    "outside_sql",
    "pick_sql",
    "prefix_sql",
    "show_spans_sql",
    "vitals_groups_sql",
    "vitals_sessions_sql",
    "vitals_tools_sql",
]

#: The chosen sessions' rows: of the roll-up through its primary key; of the spans through the
#: exporter's bloom filter on map values (a session's spans all carry its id as a value).
_CHOSEN_ROLLUP: Final = "NOT outside AND session_id IN (SELECT arrayJoin({sids:Array(String)}))"
_CHOSEN_SPANS: Final = "hasAny(mapValues(SpanAttributes), {sids:Array(String)})"
#: When their trace ids are known (from the list): the bloom filter on TraceId as well. Each index
#: alone keeps a granule on any false positive of 20 ids (1% each on values: 245 of 1,362 granules at
#: 10M spans); both keep 8.
_CHOSEN_TRACES: Final = f"TraceId IN {{traces:Array(String)}} AND {_CHOSEN_SPANS}"


def _sessions(table: str, rollup: bool, chosen: bool = False) -> str:
    """One row per session with the figures of ``AGGREGATES`` (raw spans, or the roll-up merged).

    Over the raw table the spans of no session make one more row (``in_sess`` 0): only its count
    of corrupt numbers is used, as the file reader counts those of every span it reads.
    """
    if rollup:
        where = f"\nWHERE {_CHOSEN_ROLLUP}" if chosen else ""
        return (
            f"SELECT NOT outside AS in_sess, session_id AS sid, {aggregates('merge')}\n"
            f"FROM {table}{ROLLUP_SUFFIX}{where}\nGROUP BY outside, session_id"
        )
    if chosen:
        return (
            f"SELECT in_session AS in_sess, sid, {aggregates('raw')}\nFROM {spans_from(table, _CHOSEN_SPANS)}\n"
            "WHERE in_session AND has({sids:Array(String)}, sid)\nGROUP BY in_session, sid"
        )
    return f"SELECT in_session AS in_sess, sid, {aggregates('raw')}\nFROM {spans_from(table)}\nGROUP BY in_session, sid"


#: The session's figures as the builder gives them (totals from the roll-up when no request span).
#: Its runs: every run id its spans name, and the parent a request names for a run whose parent no
#: run span gives (by attribute or by being the run span's parent span), as ``_reconstruct``.
_SESSION: Final = f"""
    if(first_ns = {FAR}, 0, first_ns) AS start_ns,
    ss_count > 0 AS span_present,
    if(ss_name.2 = 1, ss_name.3, if(rq_name.2 = 1, rq_name.3, NULL)) AS name,
    if(ss_path.2 = 1, ss_path.3, if(rq_path.2 = 1, rq_path.3, NULL)) AS path,
    if(user_id.2 = 1, user_id.3, NULL) AS uid,
    requests = 0 AND tools = 0 AND rollups > 0 AS from_rollup,
    toInt64(ifNull(if(from_rollup, toInt64(r_requests), toInt64(requests)), 0)) AS t_requests,
    toInt64(ifNull(if(from_rollup, toInt64(r_retries), toInt64(retries)), 0)) AS t_retries,
    toInt64(ifNull(if(from_rollup, 0, toInt64(errors)), 0)) AS t_errors,
    toInt64(ifNull(if(from_rollup, toInt64(r_intercepted), toInt64(intercepted)), 0)) AS t_intercepted,
    toFloat64(ifNull(if(from_rollup, toFloat64(r_cost), toFloat64(cost) + toFloat64(tool_cost)), 0)) AS t_cost,
    toInt64(ifNull(if(from_rollup, toInt64(r_input), toInt64(inp)), 0)) AS t_input,
    toInt64(ifNull(if(from_rollup, toInt64(r_output), toInt64(outp)), 0)) AS t_output,
    toInt64(tools) AS t_tools,
    multiIf(t_intercepted > 0, 'intercepted',
            NOT span_present AND {{now_ns:Int64}} - last_ns < {{window_ns:Int64}}, 'active', 'completed') AS status,
    arrayFilter(a -> a != '',
        arrayMap(x -> x.1, arraySort(x -> (x.2, x.1), arrayZip(mapKeys(agents), mapValues(agents))))) AS agent_list,
    arrayMap(x -> x.1, arraySort(x -> (x.2, x.1), arrayZip(mapKeys(traces), mapValues(traces)))) AS trace_list,
    arrayMap(x -> x.1, arrayFilter(x -> x.2 OR has(arrayMap(y -> y.4, run_spans), x.3), run_spans)) AS settled,
    arraySort(arrayDistinct(arrayFilter(x -> x != '', arrayConcat(run_keys,
        arrayMap(x -> x.2, arrayFilter(x -> NOT has(settled, x.1), req_parents)))))) AS run_ids"""

#: ``--sort`` keys and the column each orders by (the only text a sort adds to a query).
SORT_SQL: Final = {
    "cost": "t_cost",
    "tokens": "t_input + t_output",
    "latency": "duration_ns",
    "requests": "t_requests",
    "started": "start_ns",
}

#: Each filter's condition, with its bound parameter: a query has those of the filters set.
FILTERS: Final = {
    "since_ns": "greatest(last_ns, ss_end) >= {since_ns:Int64}",
    "until_ns": "start_ns <= {until_ns:Int64}",
    "agent": "has(agent_list, {agent:String})",
    "path": "(ifNull(path, '') = {path:String}"
    " OR startsWith(ifNull(path, ''), concat(replaceRegexpOne({path:String}, '/+$', ''), '/')))",
    "status": "status = {status:String}",
    "min_cost": "t_cost >= {min_cost:Float64}",
    "user": "uid = {user:String}",
}


def _selected(table: str, rollup: bool, chosen: bool) -> str:
    # ``outside_n``: the requests outside any session, in all (when none, their query is skipped).
    return f"""SELECT *, sum(toUInt64(in_sess)) OVER () AS seen, sum(corrupt) OVER () AS corrupt_all,
    sum(if(in_sess, 0, requests)) OVER () AS outside_n,
    {_SESSION.strip()},
    greatest(if(ss_end > 0, ss_end, last_ns) - start_ns, 0) AS duration_ns
FROM ({_sessions(table, rollup, chosen)})"""


def list_sql(
    table: str, *, rollup: bool, sort: str, filters: Collection[str] = (), chosen: bool = False, limit: bool = True
) -> str:
    """The selected sessions, one row each, sorted (and limited by ``{limit:UInt64}``).

    ``filters`` names the :data:`FILTERS` that are set. With ``chosen``, only the sessions whose
    ids ``{sids:Array(String)}`` holds are read (the second step; ``seen`` then counts those).
    """
    where = " AND ".join(["in_sess", *(FILTERS[f] for f in FILTERS if f in filters)])
    tail = "\nLIMIT {limit:UInt64}" if limit else ""
    return f"""SELECT * FROM ({_selected(table, rollup, chosen)})
WHERE {where}
ORDER BY {SORT_SQL[sort]} DESC, sid DESC{tail}"""


def pick_sql(table: str, *, rollup: bool, sort: str, filters: Collection[str] = ()) -> str:
    """The first step of a limited list: the chosen ids in order, the sessions in all, the corrupt numbers,
    the requests outside any session.

    Only ``sid``, ``seen`` and ``corrupt_all`` are asked for: with the new analyzer
    (``enable_analyzer=1``) the server computes no aggregate that the filters and sort do not read.
    """
    inner = list_sql(table, rollup=rollup, sort=sort, filters=filters)
    return f"SELECT sid, seen, corrupt_all, outside_n FROM ({inner})"


_OUTSIDE_TIME: Final = """
    (isNull({since_ns:Nullable(Int64)}) OR greatest(start_ns, end_ns) >= {since_ns:Nullable(Int64)})
    AND (isNull({until_ns:Nullable(Int64)}) OR start_ns <= {until_ns:Nullable(Int64)})"""


def outside_sql(table: str, rollup: bool = False) -> str:
    """Request spans outside any session in the time range (only explicit request spans, as the builder);
    from the roll-up's rows for them when there is one."""
    if rollup:
        return f"""SELECT * FROM (
  SELECT mapKeys(minMapMerge(traces))[1] AS trace_id, session_id AS span_id, minMerge(first_ns) AS start_ns,
    maxMerge(last_ns) AS end_ns, ifNull(mapKeys(minMapMerge(agents))[1], '') AS agent,
    sumMerge(retries) AS retry, sumMerge(errors) > 0 AS error, sumMerge(intercepted) > 0 AS icpt,
    sumMerge(cost) AS cost, sumMerge(inp) AS inp, sumMerge(outp) AS outp
  FROM {table}{ROLLUP_SUFFIX} WHERE outside GROUP BY session_id)
WHERE {_OUTSIDE_TIME.strip()}
ORDER BY start_ns, span_id"""
    # Only the spans that name no session are read whole (a key check; the others are most).
    alone = f"NOT mapContains(SpanAttributes, {quoted(n.ATTR_SESSION_ID)})" + (
        f" AND NOT mapContains(SpanAttributes, {quoted(n.GEN_AI_CONVERSATION_ID)})"
    )
    return f"""SELECT trace_id, span_id, start_ns, end_ns, agent, retry, error, icpt, cost, inp, outp
FROM {spans_from(table, alone)}
WHERE NOT in_session AND kind = 'request' AND {_OUTSIDE_TIME.strip()}
ORDER BY start_ns, span_id"""


def _pct(arr: str, q: int) -> str:
    """The ``q``-th percentile of a sorted array by linear interpolation (as ``_vitals.percentile``)."""
    pos = f"((length({arr}) - 1) * {q} / 100.0)"
    lo = f"toUInt64(floor({pos}))"
    hi = f"least({lo} + 1, length({arr}) - 1)"
    return f"if(empty({arr}), 0., {arr}[{lo} + 1] + ({arr}[{hi} + 1] - {arr}[{lo} + 1]) * ({pos} - {lo}))"


def _chosen_spans(table: str) -> str:
    """The spans of the chosen sessions (``{sids:Array(String)}``, in the traces ``{traces:Array(String)}``)."""
    return f"{spans_from(table, _CHOSEN_TRACES)}\nWHERE in_session AND has({{sids:Array(String)}}, sid)"


def _chosen_requests(table: str) -> str:
    """One row per request span of the chosen sessions (``{sids:Array(String)}``): its session, latency
    (seconds), policy reasons, numbers, model and agent. A request that names no agent has its run's
    (the run it names, else the run span it sits under), as the tree gives it; each session's run
    agents are gathered in the same pass, so the spans are read once."""
    reasons = (
        f"arrayFilter((r, e) -> e = {quoted(n.EVENT_POLICY)} AND r != '', "
        f"arrayMap(a -> a[{quoted(n.EVENT_POLICY_REASON)}], event_attrs), event_names)"
    )
    per_session = f"""SELECT sid,
    groupArrayIf((if(ifNull(run_id, '') = '', span_id, run_id), span_id, agent), kind = 'run' AND agent != '') AS runs,
    groupArrayIf((agent, ifNull(run_id, ''), parent_id, greatest(end_ns - start_ns, 0) / 1e9, {reasons},
                  cost, inp, outp, retry, icpt, error, ifNull(model, '')), is_req) AS reqs
FROM {_chosen_spans(table)}
GROUP BY sid"""
    return f"""SELECT sid, q.4 AS lat, q.5 AS reasons, q.6 AS cost, q.7 AS inp, q.8 AS outp, q.9 AS retry,
    q.10 AS icpt, q.11 AS error, q.12 AS model,
    if(q.1 != '', q.1, if(q.2 != '', arrayFirst(x -> x.1 = q.2, runs).3, arrayFirst(x -> x.2 = q.3, runs).3)) AS agent
FROM ({per_session}) ARRAY JOIN reqs AS q"""


def vitals_sessions_sql(table: str) -> str:
    """Per chosen session (``{sids:Array(String)}``): its request latency p50, p95, max, its policy reasons,
    and the agents its requests count under."""
    return f"""SELECT sid, {_pct("lats", 50)} AS lat_p50, {_pct("lats", 95)} AS lat_p95,
    arrayMax(if(empty(lats), [0.], lats)) AS lat_max, NOT empty(lats) AS has_requests, reasons, req_agents
FROM (SELECT sid, arraySort(groupArray(lat)) AS lats, groupUniqArrayArray(reasons) AS reasons,
             groupUniqArray(if(agent = '', '(none)', agent)) AS req_agents
      FROM ({_chosen_requests(table)}) GROUP BY sid)"""


def vitals_groups_sql(table: str) -> str:
    """Over the chosen sessions' requests, one row per (dimension, key): by ``agent`` and by ``model``
    (the "cost by" tables), and the row (``''``, ``''``) whose p50 and p95 are those of all requests."""
    return f"""SELECT dim, key, sessions, requests, cost, inp, outp, retries, intercepted, errors, p50, p95 FROM (
  SELECT d.1 AS dim, if(d.1 != '' AND d.2 = '', '(none)', d.2) AS key, uniqExact(sid) AS sessions,
    count() AS requests, sum(cost) AS cost, sum(inp) AS inp, sum(outp) AS outp, countIf(retry > 0) AS retries,
    countIf(icpt) AS intercepted, countIf(error) AS errors, arraySort(groupArray(lat)) AS lats,
    {_pct("lats", 50)} AS p50, {_pct("lats", 95)} AS p95
  FROM ({_chosen_requests(table)}) ARRAY JOIN [('agent', agent), ('model', model), ('', '')] AS d
  GROUP BY dim, key)"""


def vitals_tools_sql(table: str) -> str:
    """The chosen sessions' tool calls, one row each, in start order (``ToolStep``'s fields)."""
    after = "substring(name, position(name, ' ') + 1)"
    return f"""SELECT sid,
    if(isNotNull(tool_attr), tool_attr, if(position(name, ' ') > 0 AND {after} != '', {after}, name)) AS tool,
    span_id, parent_id, start_ns, end_ns, call_id, run_id, agent, cost, error, message
FROM {_chosen_spans(table)} AND kind = 'tool'
ORDER BY sid, start_ns, span_id"""


def show_spans_sql(table: str) -> str:
    """Every span of the traces in which one session's spans are (the trace ids found by the session
    attribute, through the exporter's bloom-filter index on map values; then by trace id, its index)."""
    return f"""SELECT TraceId, SpanId, ParentSpanId, SpanName, toInt64(toUnixTimestamp64Nano(Timestamp)) AS start_ns,
    toInt64(Duration) AS dur, StatusCode, StatusMessage, SpanAttributes, Events.Name, Events.Attributes, ServiceName
FROM {table}
WHERE TraceId IN (SELECT DISTINCT TraceId FROM {table}
                  WHERE SpanAttributes[{quoted(n.ATTR_SESSION_ID)}] = {{sid:String}}
                     OR SpanAttributes[{quoted(n.GEN_AI_CONVERSATION_ID)}] = {{sid:String}})
ORDER BY Timestamp, SpanId"""


def prefix_sql(table: str, rollup: bool) -> str:
    """Session ids starting with a prefix (for ``show`` given a shortened id)."""
    if rollup:
        return (
            f"SELECT DISTINCT session_id FROM {table}{ROLLUP_SUFFIX} "
            "WHERE NOT outside AND startsWith(session_id, {p:String}) ORDER BY session_id LIMIT 50"
        )
    return (
        f"SELECT DISTINCT sid FROM {spans_from(table)} "
        "WHERE in_session AND startsWith(sid, {p:String}) ORDER BY sid LIMIT 50"
    )
