"""Trace-file spans as rows: the few fields a session needs, read from OTLP/JSON without a dict
per attribute, and back to :class:`~._model.SpanRecord` when a record is wanted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from alephant_otel import _names as n
from alephant_otel.analytics._convert import (
    _ALIASES,
    _ERROR_CODES,
    _ROLLUP,
    _SPEC,
    MAX_COST_USD,
    NUMERIC_SLOTS,
    VALID,
    _as_float,
    _as_int,
    _as_str,
    _plain,
    _policy,
    _rollup,
    _scope_spans,
    _service,
    metadata_of,
    span_ids,
)
from alephant_otel.analytics._model import PolicyEvent, Rollup, SpanRecord, usage_unknown

if TYPE_CHECKING:
    pass

__all__ = ["CORRUPT", "record_from_row", "rows_from_otlp"]

# OverflowError: a time written as a JSON ``Infinity`` (the json module reads it) cannot be an int.
CORRUPT: Final = (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError)


# --- one line's spans as rows -------------------------------------------------------

# SpanRecord slots in row order (a non-request span travels as these values).
_SLOTS: Final = SpanRecord.__slots__
_ROW_ROLLUP: Final = 1 + _SLOTS.index("rollup")
_ROW_POLICIES: Final = 1 + _SLOTS.index("policy_events")

# Attribute key -> (tag, slot index in the value list, coercion). Tags: 0 a
# string slot, 1 an int slot, 4 a float slot, 5 any other slot, 2 a roll-up
# (the coercion is its Rollup field), 3 an alias.
_VALUE_SLOTS: Final = tuple(dict.fromkeys(slot for slot, _ in _SPEC.values()))
_V: Final = {slot: i for i, slot in enumerate(_VALUE_SLOTS)}
_TAGS: Final[dict[Any, int]] = {_as_str: 0, _as_int: 1, _as_float: 4}
_KEYS: Final[dict[str, tuple[int, int, Any]]] = {}
for _key, (_slot, _coerce) in _SPEC.items():
    _KEYS[_key] = (_TAGS.get(_coerce, 5), _V[_slot], _coerce)
for _key, _slot in _ROLLUP.items():
    _KEYS[_key] = (2, 0, _slot)
for _key, _slot in _ALIASES.items():
    _KEYS[_key] = (3, _V[_slot], None)
_BLANK: Final[list[Any]] = [None] * len(_VALUE_SLOTS)

_KIND, _SESSION_ID, _SESSION_NAME, _SESSION_PATH = _V["kind"], _V["session_id"], _V["session_name"], _V["session_path"]
_AGENT_ID, _RUN_ID, _RUN_PARENT_ID, _REQUEST_ID = _V["agent_id"], _V["run_id"], _V["run_parent_id"], _V["request_id"]
_OPERATION, _PROVIDER, _REQ_MODEL, _RESP_MODEL = (
    _V["operation"],
    _V["provider"],
    _V["request_model"],
    _V["response_model"],
)
_IN, _OUT, _COST, _COST_SOURCE = _V["input_tokens"], _V["output_tokens"], _V["cost_usd"], _V["cost_source"]
_RETRY, _INTERCEPTED, _STREAMING, _HTTP = _V["retry_attempt"], _V["intercepted"], _V["streaming"], _V["http_status"]
_INCOMPLETE: Final = _V["incomplete"]
_TOOL_NAME: Final = _V["tool_name"]
_ERROR_TYPE: Final = _V["error_type"]
_INPUT_MESSAGES, _OUTPUT_MESSAGES = _V["input_messages"], _V["output_messages"]
_SYSTEM_INSTRUCTIONS: Final = _V["system_instructions"]
#: (value index, test) of each numeric slot: see _convert.drop_impossible.
_NUMERIC: Final = tuple((_V[slot], ok) for slot, ok in zip(NUMERIC_SLOTS, VALID, strict=True))

_REQUEST: Final = n.SPAN_KIND_REQUEST
_SESSION_NAME_SPAN: Final = n.SESSION_SPAN_NAME
_RUN_PREFIX: Final = n.RUN_SPAN_PREFIX


def _policy_rows(events: Iterable[Any]) -> tuple[tuple[str, str, int | None], ...]:
    out = []
    for ev in events:
        if ev.get("name") == n.EVENT_POLICY:
            p = _policy({kv["key"]: _plain(kv["value"]) for kv in ev.get("attributes") or ()})
            out.append((p.reason, p.code, p.status))
    return tuple(out)


def rows_from_otlp(
    resource_spans: Iterable[Any], rows: list[tuple[Any, ...]], corrupt_values: list[int] | None = None
) -> int:
    """Append a row per session span (and per request span outside any session) of ``resourceSpans`` to ``rows``.

    A request span's row is ``(True, session_id, session_name, *Request
    arguments)`` with the policy events as ``(reason, code, status)`` tuples;
    any other span of a session is ``(False, *SpanRecord slots)`` with the
    roll-up as a tuple. The values are the ones
    :func:`~._convert.records_from_otlp` gives, field by field. Impossible
    numbers (NaN, infinite, negative, boolean, too large) are dropped as
    ``drop_impossible`` does and counted in ``corrupt_values[0]`` when it is given.

    Returns:
        How many spans carried no session id and were not appended (all but request spans).

    Raises:
        KeyError, TypeError, ValueError, AttributeError: The JSON is not
            OTLP; the caller counts the line as corrupt (``rows`` may then
            hold part of it).
    """
    keys = _KEYS
    blank = _BLANK
    plain = _plain
    memo: dict[Any, Any] = {}
    share = memo.setdefault  # one object per distinct string of the line: marshal writes it once
    ignored = 0
    bad = 0
    append = rows.append
    for rs in resource_spans:
        service = _service(rs)
        for ss in _scope_spans(rs):
            for sp in ss.get("spans") or ():
                tid, sid, pid = span_ids(sp)
                name = sp.get("name") or ""
                start = int(sp.get("startTimeUnixNano") or 0)
                end = int(sp.get("endTimeUnixNano") or 0)
                error = False
                message = ""
                status = sp.get("status")
                if status:
                    if status.get("code") in _ERROR_CODES:
                        error = True
                    message = status.get("message") or ""
                v = blank.copy()
                odd = False
                rollup: dict[str, Any] | None = None
                alias: dict[int, Any] | None = None
                for kv in sp.get("attributes") or ():
                    s = keys.get(kv["key"])
                    if s is None:
                        continue
                    value = kv["value"]
                    tag = s[0]
                    # Each branch gives what `coerce(_plain(value) if x is None else x)`
                    # gives (records_from_otlp), the common shapes without the calls.
                    if tag == 0:
                        x = value.get("stringValue")
                        if x.__class__ is str:
                            v[s[1]] = x
                        else:
                            v[s[1]] = _as_str(plain(value) if x is None else x)
                    elif tag == 1:
                        x = value.get("stringValue")
                        if x is None:
                            y = value.get("intValue")
                            # Up to 9 digits cannot exceed MAX_TOKENS; longer ones take the checked road.
                            if y.__class__ is str and len(value) == 1 and len(y) < 10 and y.isascii() and y.isdigit():
                                v[s[1]] = int(y)
                            else:
                                v[s[1]] = _as_int(plain(value))
                                odd = True
                        else:
                            v[s[1]] = _as_int(x)
                            odd = True
                    elif tag == 4:
                        x = value.get("stringValue")
                        if x is None:
                            y = value.get("doubleValue")
                            if y.__class__ is float and len(value) == 1:
                                v[s[1]] = y
                                # Negative, too large, or a JSON NaN/Infinity literal (the json module reads them).
                                if not 0.0 <= y <= MAX_COST_USD:
                                    odd = True
                            else:
                                v[s[1]] = _as_float(plain(value))
                                odd = True
                        else:
                            v[s[1]] = _as_float(x)
                            odd = True
                    elif tag == 5:
                        x = value.get("stringValue")
                        v[s[1]] = s[2](plain(value) if x is None else x)
                    elif tag == 2:
                        if rollup is None:
                            rollup = {}
                        rollup[s[2]] = plain(value)
                    else:
                        if alias is None:
                            alias = {}
                        x = value.get("stringValue")
                        alias[s[1]] = x if x.__class__ is str and len(value) == 1 else _as_str(plain(value))
                if alias:
                    for i, x in alias.items():
                        if v[i] is None:
                            v[i] = x
                if odd:  # a number not in the plain form this library writes: it may be impossible
                    for i, ok in _NUMERIC:
                        if not ok(v[i]):  # see _convert.drop_impossible
                            v[i] = None
                            bad += 1
                session_id = v[_SESSION_ID]
                policies: tuple[tuple[str, str, int | None], ...] = ()
                events = sp.get("events")
                if events:
                    policies = _policy_rows(events)
                    if policies:
                        v[_INTERCEPTED] = True
                roll = None
                if rollup is not None:
                    roll, bad_rollup = _rollup(rollup)
                    bad += bad_rollup
                if session_id is None and v[_KIND] != _REQUEST:
                    ignored += 1
                    continue
                # A request span outside any session travels as a request row with no session id.
                _emit(v, tid, sid, pid, name, start, end, error, message, service, policies, roll, share, append, sp)
    if corrupt_values is not None:
        corrupt_values[0] += bad
    return ignored


def _emit(
    v: list[Any],
    tid: str,
    sid: str,
    pid: str | None,
    name: str,
    start: int,
    end: int,
    error: bool,
    message: str,
    service: str | None,
    policies: tuple[tuple[str, str, int | None], ...],
    roll: Rollup | None,
    share: Callable[[Any, Any], Any],
    append: Callable[[tuple[Any, ...]], None],
    sp: Any,
) -> None:
    """Append the row of one session span (``v``: its values in ``_VALUE_SLOTS`` order)."""
    if v[_RETRY] is None:
        v[_RETRY] = 0
    kind = v[_KIND]
    if kind is None:
        # _convert._finish: the kind of a span written without alephant.span.kind.
        if name == _SESSION_NAME_SPAN:
            kind = n.SPAN_KIND_SESSION
        elif name.startswith(_RUN_PREFIX) and v[_RUN_ID] is not None:
            kind = n.SPAN_KIND_RUN
        elif v[_TOOL_NAME] is not None and name.startswith(n.OPERATION_EXECUTE_TOOL):
            kind = n.SPAN_KIND_TOOL
        elif v[_REQUEST_ID] is not None or v[_IN] is not None or v[_COST] is not None:
            kind = _REQUEST
        v[_KIND] = kind
    if kind == _REQUEST:
        # What Request.from_record makes of the record (it interns the strings
        # that repeat; here they are shared within the line).
        session_id = v[_SESSION_ID]
        run_id = v[_RUN_ID]
        run_parent = v[_RUN_PARENT_ID]
        agent = v[_AGENT_ID]
        path = v[_SESSION_PATH]
        op = v[_OPERATION]
        provider = v[_PROVIDER]
        req_model = v[_REQ_MODEL]
        resp_model = v[_RESP_MODEL]
        cost_source = v[_COST_SOURCE]
        append(
            (
                True,
                share(session_id, session_id),
                v[_SESSION_NAME],
                v[_REQUEST_ID],
                share(tid, tid),
                sid,
                pid,
                share(name, name),
                start,
                end,
                None if run_id is None else share(run_id, run_id),
                None if run_parent is None else share(run_parent, run_parent),
                None if agent is None else share(agent, agent),
                None if path is None else share(path, path),
                None if op is None else share(op, op),
                None if provider is None else share(provider, provider),
                None if req_model is None else share(req_model, req_model),
                None if resp_model is None else share(resp_model, resp_model),
                v[_IN] or 0,
                v[_OUT] or 0,
                v[_COST] or 0.0,
                None if cost_source is None else share(cost_source, cost_source),
                v[_RETRY],
                v[_INTERCEPTED] or bool(policies),
                v[_STREAMING] or False,
                error,
                message,
                v[_HTTP],
                policies,
                v[_INCOMPLETE] or False,
                usage_unknown(op, v[_IN], v[_OUT], v[_COST], error, v[_INTERCEPTED] or policies),
                None if v[_ERROR_TYPE] is None else share(v[_ERROR_TYPE], v[_ERROR_TYPE]),
                v[_INPUT_MESSAGES],
                v[_OUTPUT_MESSAGES],
                v[_SYSTEM_INSTRUCTIONS],
            )
        )
        return
    fields: dict[str, Any] = dict(zip(_VALUE_SLOTS, v, strict=True))
    fields.update(
        trace_id=tid,
        span_id=sid,
        parent_span_id=pid,
        name=name,
        start_ns=start,
        end_ns=end,
        error=error,
        status_message=message,
        service=service,
        policy_events=policies,
        rollup=None if roll is None else _rollup_row(roll),
        corrupt_values=0,  # counted per line by rows_from_otlp
        # Not a request: read as records_from_otlp does (the request rows never pay for it).
        metadata=metadata_of((kv["key"], _plain(kv["value"])) for kv in sp.get("attributes") or ()),
    )
    if fields["intercepted"] is None:
        fields["intercepted"] = False
    if fields["streaming"] is None:
        fields["streaming"] = False
    if fields["incomplete"] is None:
        fields["incomplete"] = False
    append((False, *(fields[slot] for slot in _SLOTS)))


def _rollup_row(r: Rollup) -> tuple[int, int, int, float, int, int]:
    return (r.requests, r.retries, r.intercepted, r.cost_usd, r.input_tokens, r.output_tokens)


def record_from_row(row: tuple[Any, ...]) -> SpanRecord:
    """The :class:`SpanRecord` a non-request row was made from."""
    rec = SpanRecord.__new__(SpanRecord)
    for slot, value in zip(_SLOTS, row[1:], strict=True):
        setattr(rec, slot, value)
    roll = row[_ROW_ROLLUP]
    if roll is not None:
        rec.rollup = Rollup(*roll)
    policies = row[_ROW_POLICIES]
    if policies:
        rec.policy_events = tuple(PolicyEvent(*p) for p in policies)
    return rec
