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
dropped (and counted) when the file reader drops them (NaN, infinite,
negative, over a ceiling, a boolean). Every session figure is one aggregate
over them, written once in :data:`AGGREGATES` and used three ways: directly
over the raw table, as ``-State`` in the roll-up's materialized view
(``_chrollup``), and as ``-Merge`` when reading the roll-up (``_chqueries``).

Nothing a user typed is ever put into this text: filters are bound
parameters (``{name:Type}``), the table names are checked identifiers, and
the sort column comes from a fixed table.
"""

from __future__ import annotations

import re
from typing import Final

from alephant_otel import _names as n
from alephant_otel._impossible import MAX_COST_USD, MAX_TOKENS

__all__ = [
    "AGGREGATES",
    "FAR",
    "ROLLUP_SUFFIX",
    "aggregates",
    "check_identifier",
    "quoted",
    "spans_from",
]

ROLLUP_SUFFIX: Final = "_sessions"
_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
#: "No value" for a min over times: larger than any real one, mapped back to 0 after.
FAR: Final = "toInt64(9223372036854775807)"
_FAR: Final = FAR


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain identifier (a database or table name), else ``ValueError``."""
    if not _IDENT.match(name):
        raise ValueError(f"bad {what} name {name!r}: letters, digits and _ only")
    return name


def quoted(text: str) -> str:
    """A constant of this package (an attribute or event name) as an SQL string literal."""
    return _q(text)


def _q(text: str) -> str:
    # Only ever called on this module's own constants (attribute names), never on user input.
    assert "'" not in text
    assert "\\" not in text
    return f"'{text}'"


# Attributes are read by their key's position in the span's keys (``ks``, ``vs``: the map's keys
# and values, taken once per span in ``spans_from``): ``SpanAttributes[key]`` scans and compares
# the map per lookup, and 10 lookups over 1M spans took 2.1 s against 0.5 s (chDB 26.5).
def _has(key: str) -> str:
    return f"has(ks, {_q(key)})"


def _get(key: str) -> str:
    # An absent key is position 0, and element 0 of an array is its type's default: ''.
    return f"vs[indexOf(ks, {_q(key)})]"


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


#: What a number must be to count, as the file reader's ``drop_impossible`` and ``_rollup`` judge it
#: (``$`` the parsed value; counts are truncated to integers first, as ``_as_int`` does).
_VALID: Final = {
    "cost": f"$ >= 0 AND $ <= {MAX_COST_USD!r}",
    "inp": f"trunc($) >= 0 AND trunc($) <= {MAX_TOKENS}",
    "outp": f"trunc($) >= 0 AND trunc($) <= {MAX_TOKENS}",
    "retry": "trunc($) >= 0",
    "http": "1",
    **{col: "trunc($) >= 0" for col in _ROLLUP_KEYS if col != "r_cost"},
    "r_cost": "$ >= 0",
}


def _ok(col: str) -> str:
    """1 when the parsed number is finite and possible (NULL when the attribute is not a number)."""
    return f"(isFinite(f_{col}) AND {_VALID[col].replace('$', f'f_{col}')})"


def _finite(col: str) -> str:
    """The parsed number when it counts, else NULL (absent, not a number, NaN, infinite, impossible)."""
    return f"if(ifNull({_ok(col)}, 0), f_{col}, NULL)"


def _corrupt(col: str) -> str:
    """1 when the attribute held a number the file reader drops and counts: NaN or infinite (pdata
    writes those doubles as ``json: unsupported value: NaN``; a string may say ``inf``), negative,
    over its ceiling, or a boolean (pdata writes ``true``/``false``) where a number belongs."""
    return (
        f"toUInt64(startsWith(s_{col}, 'json: unsupported value') OR s_{col} IN ('true', 'false')"
        f" OR ifNull(NOT {_ok(col)}, 0))"
    )


def spans_from(table: str, where: str = "") -> str:
    """A subquery with the per-span columns every query builds on, over the exporter's ``table``.

    Two levels: the inner one reads each attribute once (a string, and the number it parses
    to), the outer one derives from those; one level repeating the reads made the query's
    analysis take seconds. ``where`` (fixed text of the caller's, with bound parameters only)
    filters the table's own rows, where the exporter's indexes can skip granules.
    """
    inner = [
        "mapKeys(SpanAttributes) AS ks",
        "mapValues(SpanAttributes) AS vs",
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
        f"{_opt(n.ATTR_USER_ID)} AS user_attr",
        f"{_opt(n.GEN_AI_TOOL_NAME)} AS tool_attr",
        f"{_opt(n.GEN_AI_TOOL_CALL_ID)} AS call_id",
        "StatusMessage AS message",
        # The request's model: the response's, else the one asked for (``Request.model``).
        f"{_opt(n.GEN_AI_RESPONSE_MODEL, n.GEN_AI_REQUEST_MODEL)} AS model",
        # ``alephant.metadata.<key>`` (prefix kept), read from the spans that are not requests.
        # (As (key, value) pairs: the lite engine the tests run lacks mapFilter.)
        f"arrayFilter(kv -> startsWith(kv.1, {_q(n.ATTR_METADATA_PREFIX)})"
        f" AND length(kv.1) > {len(n.ATTR_METADATA_PREFIX)},"
        " arrayZip(ks, vs)) AS meta",
    ]
    for col, key in (*_NUMERIC.items(), *_ROLLUP_KEYS.items()):
        inner.append(f"{_get(key)} AS s_{col}")
        inner.append(f"toFloat64OrNull(s_{col}) AS f_{col}")
    kind = (
        "multiIf(isNotNull(kind_attr), kind_attr, NOT in_session, '',"
        f" name = {_q(n.SESSION_SPAN_NAME)}, 'session',"
        f" startsWith(name, {_q(n.RUN_SPAN_PREFIX)}) AND isNotNull(run_id), 'run',"
        f" isNotNull(tool_attr) AND startsWith(name, {_q(n.OPERATION_EXECUTE_TOOL)}), 'tool',"
        f" has_request_id OR isNotNull({_finite('inp')}) OR isNotNull({_finite('cost')}), 'request', '')"
    )
    kind = f"toString(ifNull({kind}, ''))"
    numbers = " + ".join(_corrupt(col) for col in _NUMERIC)
    # A roll-up number that is NaN or infinite counts too (the file reader takes it as 0).
    rollup_numbers = " + ".join(_corrupt(col) for col in _ROLLUP_KEYS)
    outer = [
        "in_session",
        "sid",
        "name",
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
        "user_attr",
        "tool_attr",
        "call_id",
        "message",
        "model",
        "meta",
        *(
            f"ifNull({_finite(col)}, 0) AS {col}" if col in _FLOATS else f"ifNull(toInt64({_finite(col)}), 0) AS {col}"
            for col in (*_NUMERIC, *_ROLLUP_KEYS)
        ),
        f"toUInt64({numbers} + if(has_rollup, {rollup_numbers}, 0)) AS corrupt",
        # The run ids a span names: its run (a run span without one is keyed by its span id, as
        # the builder keys it), the parent run a run span names.
        "multiIf(kind = 'run', [if(ifNull(run_id, '') = '', span_id, run_id), ifNull(run_parent, '')],"
        # A tool call naming a run no span describes makes that run (``_place_tools``).
        " kind IN ('request', 'tool') AND ifNull(run_id, '') != '', [ifNull(run_id, '')], []) AS run_keys",
        # A run span (key, whether it names its parent, its parent span, its span id); a request's
        # parent run: the builder takes that only for a run whose parent no run span gives.
        "if(kind = 'run', [(if(ifNull(run_id, '') = '', span_id, run_id), ifNull(run_parent, '') != '',"
        " parent_id, span_id)], []) AS run_span",
        "if(kind = 'request' AND ifNull(run_id, '') != '' AND ifNull(run_parent, '') != '',"
        " [(ifNull(run_id, ''), ifNull(run_parent, ''))], []) AS req_parent",
        "kind = 'request' AS is_req",
        "kind = 'session' AS is_ss",
        # The cost under another name: in the roll-up's SELECT, ``cost`` is also an aggregate's alias.
        "cost AS span_cost",
    ]
    rows = f"\nWHERE {where}" if where else ""
    return "(SELECT " + ",\n    ".join(outer) + "\nFROM (SELECT " + ",\n    ".join(inner) + f"\nFROM {table}{rows}))"


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
    # Tool calls: their count, and their cost, part of the session's (model plus tools).
    ("tools", "sum", "toUInt64(kind = 'tool')"),
    ("tool_cost", "sum", "if(kind = 'tool', span_cost, 0.)"),
    # Who the session serves: the first ``user.id`` on a span of it that is not a request.
    (
        "user_id",
        "min",
        f"if(NOT is_req AND isNotNull(user_attr), (start_ns, 1, ifNull(user_attr, '')), ({_FAR}, 0, ''))",
    ),
    # Its metadata: a session span's, else those of its other spans (not requests), by start.
    ("ss_meta", "argMin", f"arrayFilter(kv -> is_ss, meta), if(is_ss AND NOT empty(meta), start_ns, {_FAR})"),
    ("meta_spans", "groupArrayArray", "if(NOT is_req AND NOT is_ss AND NOT empty(meta), [(start_ns, meta)], [])"),
    ("corrupt", "sum", "corrupt"),
    ("agents", "minMap", "map(if(kind IN ('run', 'request'), agent, ''), start_ns)"),
    ("traces", "minMap", "map(trace_id, start_ns)"),
    ("run_keys", "groupUniqArrayArray", "run_keys"),
    ("run_spans", "groupUniqArrayArray", "run_span"),
    ("req_parents", "groupUniqArrayArray", "req_parent"),
    # For Grafana's "cost by agent" on the roll-up (the request's own agent id; '' for none).
    ("agent_cost", "sumMap", "map(if(is_req, agent, ''), if(is_req, span_cost, 0.))"),
)


def aggregates(mode: str) -> str:
    """The :data:`AGGREGATES` as ``raw`` aggregates, ``state`` (the roll-up's view) or ``merge`` (reading it)."""
    if mode == "raw":
        return ",\n    ".join(f"{f}({arg}) AS {col}" for col, f, arg in AGGREGATES)
    if mode == "state":
        return ",\n    ".join(f"{f}State({arg}) AS {col}" for col, f, arg in AGGREGATES)
    return ",\n    ".join(f"{f}Merge({col}) AS {col}" for col, f, _ in AGGREGATES)
