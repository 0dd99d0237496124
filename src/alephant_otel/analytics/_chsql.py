"""The SQL that answers session questions inside ClickHouse.

Written against the table the Collector's contrib ``clickhouseexporter``
creates (``otel_traces``): one row per span, attributes in
``SpanAttributes Map(LowCardinality(String), String)`` with every value a
string (pdata's ``AsString``: numbers as JSON numbers, ``3.612e-7``;
booleans ``true``/``false``; a NaN or infinite double as ``json: unsupported
value: ...``), ``StatusCode`` a word (``Error``, or ``STATUS_CODE_ERROR`` from
older exporters), events as the ``Events`` Nested columns.

The per-span expressions below read those strings as the trace-file reader
reads its spans (``_convert``): the same attribute names and aliases, the
same inference of a span's kind, numbers parsed with ``toFloat64OrNull`` and
dropped (and counted) when NaN or infinite. Every session figure is one
aggregate over them, written once in :data:`AGGREGATES` and used three ways:
directly over the raw table, as ``-State`` in the roll-up's materialized view,
and as ``-Merge`` when reading the roll-up.

Nothing a user typed is ever put into this text: filters are bound
parameters (``{name:Type}``), the table names are checked identifiers, and
the sort column comes from a fixed table.
"""

from __future__ import annotations

import re
from typing import Final

from alephant_otel import _names as n

__all__ = [
    "AGGREGATES",
    "ROLLUP_SUFFIX",
    "SORT_SQL",
    "check_identifier",
    "list_sql",
    "outside_sql",
    "rollup_ddl",
    "show_spans_sql",
    "spans_from",
]

ROLLUP_SUFFIX: Final = "_sessions"
_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
#: "No value" for a min over times: larger than any real one, mapped back to 0 after.
_FAR: Final = "toInt64(9223372036854775807)"


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain identifier (a database or table name), else ``ValueError``."""
    if not _IDENT.match(name):
        raise ValueError(f"bad {what} name {name!r}: letters, digits and _ only")
    return name


def _q(text: str) -> str:
    # Only ever called on this module's own constants (attribute names), never on user input.
    assert "'" not in text
    assert "\\" not in text
    return f"'{text}'"


def _has(key: str) -> str:
    return f"mapContains(SpanAttributes, {_q(key)})"


def _get(key: str) -> str:
    return f"SpanAttributes[{_q(key)}]"


def _opt(key: str, alias: str | None = None) -> str:
    """The attribute as Nullable(String): NULL when absent (an alias fills it when the name is absent)."""
    value = f"if({_has(key)}, {_get(key)}, NULL)"
    if alias is None:
        return value
    return f"if({_has(key)}, {_get(key)}, if({_has(alias)}, {_get(alias)}, NULL))"


_NUMERIC: Final = {
    "cost": n.ATTR_COST_USD,
    "inp": n.GEN_AI_USAGE_INPUT_TOKENS,
    "outp": n.GEN_AI_USAGE_OUTPUT_TOKENS,
    "retry": n.ATTR_RETRY_ATTEMPT,
    "http": "http.response.status_code",
}
_ROLLUP_KEYS: Final = {
    "r_requests": n.ATTR_TOTAL_REQUESTS,
    "r_retries": n.ATTR_TOTAL_RETRIES,
    "r_intercepted": n.ATTR_TOTAL_INTERCEPTED,
    "r_input": n.ATTR_TOTAL_INPUT_TOKENS,
    "r_output": n.ATTR_TOTAL_OUTPUT_TOKENS,
    "r_cost": n.ATTR_TOTAL_COST_USD,
}
_FLOATS: Final = ("cost", "r_cost")


def _finite(col: str) -> str:
    """The parsed number as a finite Float64, else NULL (absent, not a number, NaN, infinite)."""
    return f"if(ifNull(isFinite(f_{col}), 0), f_{col}, NULL)"


def _corrupt(col: str) -> str:
    """1 when the attribute held a NaN or an infinity (what the file reader drops and counts):
    pdata writes those doubles as ``json: unsupported value: NaN``; a string may say ``inf``."""
    return f"toUInt64(startsWith(s_{col}, 'json: unsupported value') OR ifNull(NOT isFinite(f_{col}), 0))"


def spans_from(table: str) -> str:
    """A subquery with the per-span columns every query builds on, over the exporter's ``table``.

    Two levels: the inner one reads each attribute once (a string, and the number it parses
    to), the outer one derives from those; one level repeating the reads made the query's
    analysis take seconds.
    """
    inner = [
        f"{_has(n.ATTR_SESSION_ID)} OR {_has(n.GEN_AI_CONVERSATION_ID)} AS in_session",
        f"ifNull({_opt(n.ATTR_SESSION_ID, n.GEN_AI_CONVERSATION_ID)}, '') AS sid",
        f"{_opt(n.ATTR_SPAN_KIND)} AS kind_attr",
        f"{_has(n.ATTR_REQUEST_ID)} AS has_request_id",
        "SpanName AS name",
        "TraceId AS trace_id",
        "SpanId AS span_id",
        "ParentSpanId AS parent_id",
        "toInt64(toUnixTimestamp64Nano(Timestamp)) AS start_ns",
        "start_ns + toInt64(Duration) AS end_ns",
        "StatusCode IN ('Error', 'STATUS_CODE_ERROR') AS error",
        f"ifNull({_opt(n.ATTR_AGENT_ID, n.GEN_AI_AGENT_ID)}, '') AS agent",
        f"{_opt(n.ATTR_RUN_ID)} AS run_id",
        f"{_opt(n.ATTR_RUN_PARENT_ID)} AS run_parent",
        f"{_opt(n.ATTR_SESSION_NAME)} AS sname",
        f"{_opt(n.ATTR_SESSION_PATH)} AS spath",
        f"(lower({_get(n.ATTR_INTERCEPTED)}) = 'true' OR has(Events.Name, {_q(n.EVENT_POLICY)})) AS icpt",
        f"({' OR '.join(_has(k) for k in _ROLLUP_KEYS.values())}) AS has_rollup",
        "Events.Name AS event_names",
        "Events.Attributes AS event_attrs",
    ]
    for col, key in (*_NUMERIC.items(), *_ROLLUP_KEYS.items()):
        inner.append(f"{_get(key)} AS s_{col}")
        inner.append(f"toFloat64OrNull(s_{col}) AS f_{col}")
    kind = (
        "multiIf(isNotNull(kind_attr), kind_attr, NOT in_session, '',"
        f" name = {_q(n.SESSION_SPAN_NAME)}, 'session',"
        f" startsWith(name, {_q(n.RUN_SPAN_PREFIX)}) AND isNotNull(run_id), 'run',"
        f" has_request_id OR isNotNull({_finite('inp')}) OR isNotNull({_finite('cost')}), 'request', '')"
    )
    kind = f"toString(ifNull({kind}, ''))"
    numbers = " + ".join(_corrupt(col) for col in _NUMERIC)
    # A roll-up number that is NaN or infinite counts too (the file reader takes it as 0).
    rollup_numbers = " + ".join(_corrupt(col) for col in _ROLLUP_KEYS)
    outer = [
        "in_session",
        "sid",
        f"{kind} AS kind",
        "trace_id",
        "span_id",
        "parent_id",
        "start_ns",
        "end_ns",
        "error",
        "agent",
        "run_id",
        "run_parent",
        "sname",
        "spath",
        "icpt",
        "has_rollup",
        "event_names",
        "event_attrs",
        *(
            f"ifNull({_finite(col)}, 0) AS {col}" if col in _FLOATS else f"ifNull(toInt64({_finite(col)}), 0) AS {col}"
            for col in (*_NUMERIC, *_ROLLUP_KEYS)
        ),
        f"toUInt64({numbers} + if(has_rollup, {rollup_numbers}, 0)) AS corrupt",
        # The run ids a span names: its run (a run span without one is keyed by its span id,
        # as the builder keys it) and the parent run a run or a request names.
        "multiIf(kind = 'run', [if(ifNull(run_id, '') = '', span_id, run_id), ifNull(run_parent, '')],"
        " kind = 'request' AND ifNull(run_id, '') != '', [run_id, ifNull(run_parent, '')], []) AS run_keys",
        "kind = 'request' AS is_req",
        "kind = 'session' AS is_ss",
        # The cost under another name: in the roll-up's SELECT, ``cost`` is also an aggregate's alias.
        "cost AS span_cost",
    ]
    return "(SELECT " + ",\n    ".join(outer) + "\nFROM (SELECT " + ",\n    ".join(inner) + f"\nFROM {table}))"


#: (column, aggregate function, argument): one figure of a session each. Written with plain
#: aggregate functions (no -If) so that each also works as ``<f>State``/``<f>Merge`` in the roll-up.
AGGREGATES: Final = (
    ("first_ns", "min", f"if(start_ns > 0, start_ns, {_FAR})"),
    ("last_ns", "max", "end_ns"),
    ("ss_count", "sum", "toUInt64(is_ss)"),
    ("ss_end", "max", "if(is_ss, end_ns, 0)"),
    # A session span's name or path counts when not empty; a request's whenever it has one (the
    # builder's ``span or request`` rules). The middle element says "found".
    ("ss_name", "min", f"if(is_ss AND ifNull(sname, '') != '', (start_ns, 1, ifNull(sname, '')), ({_FAR}, 0, ''))"),
    ("rq_name", "min", f"if(is_req AND isNotNull(sname), (start_ns, 1, ifNull(sname, '')), ({_FAR}, 0, ''))"),
    ("ss_path", "min", f"if(is_ss AND ifNull(spath, '') != '', (start_ns, 1, ifNull(spath, '')), ({_FAR}, 0, ''))"),
    ("rq_path", "min", f"if(is_req AND isNotNull(spath), (start_ns, 1, ifNull(spath, '')), ({_FAR}, 0, ''))"),
    ("rollups", "sum", "toUInt64(is_ss AND has_rollup)"),
    ("r_requests", "sum", "if(is_ss, r_requests, 0)"),
    ("r_retries", "sum", "if(is_ss, r_retries, 0)"),
    ("r_intercepted", "sum", "if(is_ss, r_intercepted, 0)"),
    ("r_input", "sum", "if(is_ss, r_input, 0)"),
    ("r_output", "sum", "if(is_ss, r_output, 0)"),
    ("r_cost", "sum", "if(is_ss, r_cost, 0)"),
    ("requests", "sum", "toUInt64(is_req)"),
    ("retries", "sum", "toUInt64(is_req AND retry > 0)"),
    ("errors", "sum", "toUInt64(is_req AND error)"),
    ("failed", "sum", "toUInt64(is_req AND error AND NOT icpt)"),
    ("intercepted", "sum", "toUInt64(is_req AND icpt)"),
    ("cost", "sum", "if(is_req, cost, 0)"),
    ("inp", "sum", "if(is_req, inp, 0)"),
    ("outp", "sum", "if(is_req, outp, 0)"),
    ("corrupt", "sum", "corrupt"),
    ("agents", "minMap", "map(if(kind IN ('run', 'request'), agent, ''), start_ns)"),
    ("traces", "minMap", "map(trace_id, start_ns)"),
    ("run_keys", "groupUniqArrayArray", "run_keys"),
    # For Grafana's "cost by agent" on the roll-up (the request's own agent id; '' for none).
    ("agent_cost", "sumMap", "map(if(is_req, agent, ''), if(is_req, span_cost, 0.))"),
)


def _aggregates(mode: str) -> str:
    if mode == "raw":
        return ",\n    ".join(f"{f}({arg}) AS {col}" for col, f, arg in AGGREGATES)
    if mode == "state":
        return ",\n    ".join(f"{f}State({arg}) AS {col}" for col, f, arg in AGGREGATES)
    return ",\n    ".join(f"{f}Merge({col}) AS {col}" for col, f, _ in AGGREGATES)


def _sessions(table: str, rollup: bool) -> str:
    """One row per session with the figures of :data:`AGGREGATES` (raw spans, or the roll-up merged).

    Over the raw table the spans of no session make one more row (``in_sess`` 0): only its count
    of corrupt numbers is used, as the file reader counts those of every span it reads.
    """
    if rollup:
        return (
            f"SELECT NOT outside AS in_sess, session_id AS sid, {_aggregates('merge')}\n"
            f"FROM {table}{ROLLUP_SUFFIX}\nGROUP BY outside, session_id"
        )
    return (
        f"SELECT in_session AS in_sess, sid, {_aggregates('raw')}\nFROM {spans_from(table)}\nGROUP BY in_session, sid"
    )


#: The session's figures as the builder gives them (totals from the roll-up when no request span).
_SESSION: Final = f"""
    if(first_ns = {_FAR}, 0, first_ns) AS start_ns,
    ss_count > 0 AS span_present,
    if(ss_name.2 = 1, ss_name.3, if(rq_name.2 = 1, rq_name.3, NULL)) AS name,
    if(ss_path.2 = 1, ss_path.3, if(rq_path.2 = 1, rq_path.3, NULL)) AS path,
    requests = 0 AND rollups > 0 AS from_rollup,
    toInt64(ifNull(if(from_rollup, toInt64(r_requests), toInt64(requests)), 0)) AS t_requests,
    toInt64(ifNull(if(from_rollup, toInt64(r_retries), toInt64(retries)), 0)) AS t_retries,
    toInt64(ifNull(if(from_rollup, 0, toInt64(errors)), 0)) AS t_errors,
    toInt64(ifNull(if(from_rollup, toInt64(r_intercepted), toInt64(intercepted)), 0)) AS t_intercepted,
    toFloat64(ifNull(if(from_rollup, toFloat64(r_cost), toFloat64(cost)), 0)) AS t_cost,
    toInt64(ifNull(if(from_rollup, toInt64(r_input), toInt64(inp)), 0)) AS t_input,
    toInt64(ifNull(if(from_rollup, toInt64(r_output), toInt64(outp)), 0)) AS t_output,
    multiIf(t_intercepted > 0, 'intercepted',
            NOT span_present AND {{now_ns:Int64}} - last_ns < {{window_ns:Int64}}, 'active', 'completed') AS status,
    arrayFilter(a -> a != '',
        arrayMap(x -> x.1, arraySort(x -> (x.2, x.1), arrayZip(mapKeys(agents), mapValues(agents))))) AS agent_list,
    arrayMap(x -> x.1, arraySort(x -> (x.2, x.1), arrayZip(mapKeys(traces), mapValues(traces)))) AS trace_list,
    arraySort(arrayFilter(x -> x != '', run_keys)) AS run_ids"""

#: ``--sort`` keys and the column each orders by (the only text a sort adds to a query).
SORT_SQL: Final = {
    "cost": "t_cost",
    "tokens": "t_input + t_output",
    "latency": "duration_ns",
    "requests": "t_requests",
    "started": "start_ns",
}

#: The filters, each a bound parameter; a NULL parameter switches its filter off.
_WHERE: Final = """
    (isNull({since_ns:Nullable(Int64)}) OR greatest(last_ns, ss_end) >= {since_ns:Nullable(Int64)})
    AND (isNull({until_ns:Nullable(Int64)}) OR start_ns <= {until_ns:Nullable(Int64)})
    AND (isNull({agent:Nullable(String)}) OR has(agent_list, {agent:Nullable(String)}))
    AND (isNull({path:Nullable(String)}) OR ifNull(path, '') = {path:Nullable(String)}
         OR startsWith(ifNull(path, ''), concat(replaceRegexpOne(ifNull({path:Nullable(String)}, ''), '/+$', ''), '/')))
    AND (isNull({status:Nullable(String)}) OR status = {status:Nullable(String)})
    AND (isNull({min_cost:Nullable(Float64)}) OR t_cost >= {min_cost:Nullable(Float64)})"""


def _selected(table: str, rollup: bool) -> str:
    return f"""SELECT *, sum(toUInt64(in_sess)) OVER () AS seen, sum(corrupt) OVER () AS corrupt_all,
    {_SESSION.strip()},
    greatest(if(ss_end > 0, ss_end, last_ns) - start_ns, 0) AS duration_ns
FROM ({_sessions(table, rollup)})"""


def list_sql(table: str, *, rollup: bool, sort: str) -> str:
    """The selected sessions, one row each, sorted and limited; ``seen`` counts them all."""
    order = SORT_SQL[sort]
    return f"""SELECT * FROM ({_selected(table, rollup)})
WHERE in_sess AND {_WHERE.strip()}
ORDER BY {order} DESC, sid DESC
LIMIT {{limit:UInt64}}"""


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
    return f"""SELECT trace_id, span_id, start_ns, end_ns, agent, retry, error, icpt, cost, inp, outp
FROM {spans_from(table)}
WHERE NOT in_session AND kind = 'request'
    AND (isNull({{since_ns:Nullable(Int64)}}) OR greatest(start_ns, end_ns) >= {{since_ns:Nullable(Int64)}})
    AND (isNull({{until_ns:Nullable(Int64)}}) OR start_ns <= {{until_ns:Nullable(Int64)}})
ORDER BY start_ns, span_id"""


def _pct(arr: str, q: int) -> str:
    """The ``q``-th percentile of a sorted array by linear interpolation (as ``_vitals.percentile``)."""
    pos = f"((length({arr}) - 1) * {q} / 100.0)"
    lo = f"toUInt64(floor({pos}))"
    hi = f"least({lo} + 1, length({arr}) - 1)"
    return f"if(empty({arr}), 0., {arr}[{lo} + 1] + ({arr}[{hi} + 1] - {arr}[{lo} + 1]) * ({pos} - {lo}))"


def _chosen_requests(table: str) -> str:
    """One row per request span of the chosen sessions (``{sids:Array(String)}``): its session, latency
    (seconds), policy reasons, numbers, and agent. A request that names no agent has its run's (the
    run it names, else the run span it sits under), as the tree gives it; each session's run agents
    are gathered in the same pass, so the spans are read once."""
    reasons = (
        f"arrayFilter((r, e) -> e = {_q(n.EVENT_POLICY)} AND r != '', "
        f"arrayMap(a -> a[{_q(n.EVENT_POLICY_REASON)}], event_attrs), event_names)"
    )
    per_session = f"""SELECT sid,
    groupArrayIf((if(ifNull(run_id, '') = '', span_id, run_id), span_id, agent), kind = 'run' AND agent != '') AS runs,
    groupArrayIf((agent, ifNull(run_id, ''), parent_id, greatest(end_ns - start_ns, 0) / 1e9, {reasons},
                  cost, inp, outp, retry, icpt, error), is_req) AS reqs
FROM {spans_from(table)}
WHERE in_session AND has({{sids:Array(String)}}, sid)
GROUP BY sid"""
    return f"""SELECT sid, q.4 AS lat, q.5 AS reasons, q.6 AS cost, q.7 AS inp, q.8 AS outp, q.9 AS retry,
    q.10 AS icpt, q.11 AS error,
    if(q.1 != '', q.1, if(q.2 != '', arrayFirst(x -> x.1 = q.2, runs).3, arrayFirst(x -> x.2 = q.3, runs).3)) AS agent
FROM ({per_session}) ARRAY JOIN reqs AS q"""


def vitals_sessions_sql(table: str) -> str:
    """Per chosen session (``{sids:Array(String)}``): its request latency p50, p95, max, and its policy reasons."""
    return f"""SELECT sid, {_pct("lats", 50)} AS lat_p50, {_pct("lats", 95)} AS lat_p95,
    arrayMax(if(empty(lats), [0.], lats)) AS lat_max, NOT empty(lats) AS has_requests, reasons
FROM (SELECT sid, arraySort(groupArray(lat)) AS lats, groupUniqArrayArray(reasons) AS reasons
      FROM ({_chosen_requests(table)}) GROUP BY sid)"""


def vitals_agents_sql(table: str) -> str:
    """Over the chosen sessions' requests: one row per agent (the "by agent" table), and the
    roll-up row (key ``''``) whose p50 and p95 are those of all the requests."""
    return f"""SELECT key, sessions, requests, cost, inp, outp, retries, intercepted, errors, p50, p95 FROM (
  SELECT if(agent = '', '(none)', agent) AS key, uniqExact(sid) AS sessions, count() AS requests,
    sum(cost) AS cost, sum(inp) AS inp, sum(outp) AS outp, countIf(retry > 0) AS retries,
    countIf(icpt) AS intercepted, countIf(error) AS errors, arraySort(groupArray(lat)) AS lats,
    {_pct("lats", 50)} AS p50, {_pct("lats", 95)} AS p95
  FROM ({_chosen_requests(table)}) GROUP BY key WITH ROLLUP)"""


def show_spans_sql(table: str) -> str:
    """Every span of the traces in which one session's spans are (the trace ids found by the session
    attribute, through the exporter's bloom-filter index on map values; then by trace id, its index)."""
    return f"""SELECT TraceId, SpanId, ParentSpanId, SpanName, toInt64(toUnixTimestamp64Nano(Timestamp)) AS start_ns,
    toInt64(Duration) AS dur, StatusCode, StatusMessage, SpanAttributes, Events.Name, Events.Attributes, ServiceName
FROM {table}
WHERE TraceId IN (SELECT DISTINCT TraceId FROM {table}
                  WHERE SpanAttributes[{_q(n.ATTR_SESSION_ID)}] = {{sid:String}}
                     OR SpanAttributes[{_q(n.GEN_AI_CONVERSATION_ID)}] = {{sid:String}})"""


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


_ROLLUP_HEADER: Final = """\
-- The sessions roll-up for `alephant-otel sessions ... --source clickhouse+http://...`:
-- one row per session (aggregate states keyed by session id) beside the Collector's
-- otel_traces table, filled by a materialized view as spans arrive. With it, `sessions
-- list` reads thousands of rows instead of every span; without it the source reads
-- otel_traces and says so once.
--
-- Run it once, after the Collector has created otel_traces (its clickhouse exporter does
-- at start), with the database and table names changed if yours differ:
--     clickhouse-client --multiquery < sessions_rollup.sql
-- The view sees only rows inserted after it exists: the last statement copies in what
-- otel_traces already holds (run it once; spans arriving meanwhile may be counted twice,
-- so run it while the Collector is stopped, or skip it on an empty table).
--
-- TTL: the exporter's ttl (e.g. ttl: 72h) drops old parts of otel_traces only; rows here
-- stay. `sessions show` then finds no spans for a session older than the TTL. To expire
-- sessions with the spans, give this table the same TTL on its last activity:
--     ALTER TABLE otel.otel_traces_sessions
--         MODIFY TTL toDateTime(intDiv(finalizeAggregation(last_ns), 1000000000)) + INTERVAL 3 DAY;
-- (A session that spans the cut-off keeps its row until its last span is older.)
--
-- Generated: python -m alephant_otel.analytics._chsql > sessions_rollup.sql (a test checks it).

"""


def rollup_ddl(database: str, table: str) -> str:
    """The roll-up: an AggregatingMergeTree with one row per session, the view that fills it, the back-fill."""
    states = _aggregates("state")
    target = f"{database}.{table}{ROLLUP_SUFFIX}"
    # Requests outside any session get a row each (outside = 1, keyed by span id): the list's
    # "(no session)" line then reads the roll-up too, not every span.
    select = f"""SELECT NOT in_session AS outside, if(in_session, sid, span_id) AS session_id, {states}
FROM {spans_from(f"{database}.{table}")}
WHERE in_session OR kind = 'request'
GROUP BY outside, session_id"""
    return f"""{_ROLLUP_HEADER}CREATE TABLE IF NOT EXISTS {target}
ENGINE = AggregatingMergeTree
ORDER BY (outside, session_id)
EMPTY AS
{select};

CREATE MATERIALIZED VIEW IF NOT EXISTS {target}_mv TO {target} AS
{select};

INSERT INTO {target}
{select};
"""


if __name__ == "__main__":  # pragma: no cover - writes collector-config/clickhouse/sessions_rollup.sql
    import sys

    sys.stdout.write(rollup_ddl("otel", "otel_traces"))
