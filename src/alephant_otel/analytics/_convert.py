"""Turning each backend's span JSON into :class:`SpanRecord`.

Two entry points share one attribute table:

- :func:`records_from_otlp` for OTLP/JSON ``resourceSpans`` (the local trace
  file, the Collector's ``file`` exporter, Tempo's trace-by-id). It is the hot
  path of ``sessions list`` over a big file, so it looks attributes up in one
  dict and touches nothing else.
- :func:`record_from_flat` for backends that already flattened attributes
  into plain values (Jaeger tags, Phoenix ``attributes``).

OTLP/JSON writes trace and span ids as hex, but some producers (Tempo's
trace-by-id, protobuf's generic JSON printer) write base64: both are read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from alephant_otel import _names as n
from alephant_otel._impossible import MAX_COST_USD, MAX_TOKENS
from alephant_otel.analytics._model import PolicyEvent, Rollup, SpanRecord

__all__ = [
    "MAX_COST_USD",
    "MAX_TOKENS",
    "NUMERIC_SLOTS",
    "drop_impossible",
    "metadata_of",
    "normalize_id",
    "record_from_flat",
    "records_from_otlp",
    "span_ids",
]

_HEX: Final = frozenset("0123456789abcdefABCDEF")


def normalize_id(raw: object) -> str:
    """A trace or span id as lower-case hex, whether it came as hex or base64."""
    if not isinstance(raw, str) or not raw:
        return ""
    if (len(raw) in (32, 16)) and _HEX.issuperset(raw):
        return raw.lower()
    try:
        return base64.b64decode(raw, validate=True).hex()
    except (binascii.Error, ValueError):
        return raw.lower()


# --- value coercion (OTLP AnyValue dicts and plain values) -------------------


def _plain(v: Mapping[str, Any]) -> Any:
    """The Python value inside an OTLP ``AnyValue``."""
    for key, x in v.items():
        if key == "stringValue":
            return x
        if key == "intValue":
            try:
                return int(x)
            except (TypeError, ValueError):
                return None
        if key == "doubleValue":
            try:
                return float(x)
            except (TypeError, ValueError):
                return None
        if key == "boolValue":
            return x
        if key == "arrayValue":
            return [_plain(e) for e in (x or {}).get("values", ()) if isinstance(e, dict)]
    return None


def _as_str(x: Any) -> str | None:
    if x is None or isinstance(x, str):
        return x
    return str(x)


def _as_int(x: Any) -> int | float | None:
    # A NaN or an infinity comes back as that float (int() cannot hold it), and a
    # boolean as itself, for drop_impossible to drop and count; any other non-number is None.
    if isinstance(x, int):
        return x
    try:
        f = float(x)
        return int(f) if f - f == 0 else f
    except (TypeError, ValueError):
        return None


def _as_float(x: Any) -> float | None:
    if isinstance(x, float):
        return x
    if x.__class__ is bool:  # kept as itself for drop_impossible: true is not a cost of $1
        return x
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _as_bool(x: Any) -> bool:
    if isinstance(x, str):
        return x.lower() == "true"
    return bool(x)


# Attribute key -> (record slot, coercion). The gen_ai aliases come after the
# alephant names so that ``_fill`` never lets an alias overwrite them.
_SPEC: Final[dict[str, tuple[str, Callable[[Any], Any]]]] = {
    n.ATTR_SPAN_KIND: ("kind", _as_str),
    n.ATTR_SESSION_ID: ("session_id", _as_str),
    n.ATTR_SESSION_NAME: ("session_name", _as_str),
    n.ATTR_SESSION_PATH: ("session_path", _as_str),
    n.ATTR_AGENT_ID: ("agent_id", _as_str),
    n.ATTR_RUN_ID: ("run_id", _as_str),
    n.ATTR_RUN_PARENT_ID: ("run_parent_id", _as_str),
    n.ATTR_REQUEST_ID: ("request_id", _as_str),
    n.GEN_AI_OPERATION_NAME: ("operation", _as_str),
    n.GEN_AI_PROVIDER_NAME: ("provider", _as_str),
    n.GEN_AI_REQUEST_MODEL: ("request_model", _as_str),
    n.GEN_AI_RESPONSE_MODEL: ("response_model", _as_str),
    n.GEN_AI_USAGE_INPUT_TOKENS: ("input_tokens", _as_int),
    n.GEN_AI_USAGE_OUTPUT_TOKENS: ("output_tokens", _as_int),
    n.ATTR_COST_USD: ("cost_usd", _as_float),
    n.ATTR_COST_SOURCE: ("cost_source", _as_str),
    n.ATTR_RETRY_ATTEMPT: ("retry_attempt", _as_int),
    n.ATTR_INTERCEPTED: ("intercepted", _as_bool),
    n.ATTR_STREAMING: ("streaming", _as_bool),
    n.ATTR_BODY_INCOMPLETE: ("incomplete", _as_bool),
    "http.response.status_code": ("http_status", _as_int),
    # What the httpx instrumentation writes unless OTEL_SEMCONV_STABILITY_OPT_IN
    # has "http" (with "http/dup" both, with the same value).
    "http.status_code": ("http_status", _as_int),
    n.ATTR_ERROR_TYPE: ("error_type", _as_str),
    n.ATTR_USER_ID: ("user_id", _as_str),
    n.GEN_AI_TOOL_NAME: ("tool_name", _as_str),
    n.GEN_AI_TOOL_CALL_ID: ("tool_call_id", _as_str),
    n.GEN_AI_INPUT_MESSAGES: ("input_messages", _as_str),
    n.GEN_AI_OUTPUT_MESSAGES: ("output_messages", _as_str),
    n.GEN_AI_SYSTEM_INSTRUCTIONS: ("system_instructions", _as_str),
}
# Aliases fill a slot only when the alephant name did not.
_ALIASES: Final[dict[str, str]] = {
    n.GEN_AI_CONVERSATION_ID: "session_id",
    n.GEN_AI_AGENT_ID: "agent_id",
}
_ROLLUP: Final[dict[str, str]] = {
    n.ATTR_TOTAL_REQUESTS: "requests",
    n.ATTR_TOTAL_RETRIES: "retries",
    n.ATTR_TOTAL_INTERCEPTED: "intercepted",
    n.ATTR_TOTAL_COST_USD: "cost_usd",
    n.ATTR_TOTAL_INPUT_TOKENS: "input_tokens",
    n.ATTR_TOTAL_OUTPUT_TOKENS: "output_tokens",
}
_ERROR_CODES: Final = frozenset((2, "2", "STATUS_CODE_ERROR", "ERROR"))


def _count_ok(x: Any) -> bool:
    # The class test rejects booleans (bool is an int subclass) and the floats
    # _as_int keeps for NaN and the infinities.
    return x is None or (x.__class__ is int and 0 <= x <= MAX_TOKENS)


def _cost_ok(x: Any) -> bool:
    # NaN fails both comparisons; a boolean is kept as itself by _as_float.
    return x is None or (x.__class__ is float and 0.0 <= x <= MAX_COST_USD)


def _retry_ok(x: Any) -> bool:
    return x is None or (x.__class__ is int and x >= 0)


def _status_ok(x: Any) -> bool:
    return x is None or x.__class__ is int


#: Numeric SpanRecord slots a span from outside may fill with an impossible value.
NUMERIC_SLOTS: Final = ("cost_usd", "input_tokens", "output_tokens", "retry_attempt", "http_status")
#: The test each of them must pass, in NUMERIC_SLOTS order.
VALID: Final[tuple[Callable[[Any], bool], ...]] = (_cost_ok, _count_ok, _count_ok, _retry_ok, _status_ok)


def _total_ok(x: Any) -> bool:
    # A roll-up sums a session's requests, so it has no per-request ceiling.
    return x is None or (x.__class__ is int and x >= 0)


def _rollup(values: Mapping[str, Any]) -> tuple[Rollup, int]:
    """The roll-up of a session/run span, and how many of its numbers were impossible (taken as 0).

    Impossible: NaN, infinite, negative, or a boolean where a count or a cost belongs.
    """
    bad = 0
    counts: dict[str, int] = {}
    for key in ("requests", "retries", "intercepted", "input_tokens", "output_tokens"):
        x = _as_int(values.get(key))
        if not _total_ok(x):
            bad += 1
        elif isinstance(x, int):
            counts[key] = x
    cost = _as_float(values.get("cost_usd"))
    if cost is not None and not (cost.__class__ is float and 0.0 <= cost < float("inf")):
        cost = None
        bad += 1
    return Rollup(cost_usd=cost or 0.0, **counts), bad


def drop_impossible(rec: SpanRecord) -> int:
    """Unset the numbers of ``rec`` that cannot be true (corrupt data from outside); returns how many.

    ``alephant.cost.usd`` of ``{"doubleValue": "Infinity"}`` is valid OTLP/JSON,
    but a cost or a token count cannot be infinite: summed, it would make every
    total ``inf`` or ``nan`` and the ``--json`` output not JSON. Nor can one be
    negative, a boolean (``true`` read as 1), over :data:`MAX_TOKENS` tokens or
    over :data:`MAX_COST_USD` for one request: such a value is dropped, not summed.
    """
    bad = 0
    for slot, ok in zip(NUMERIC_SLOTS, VALID, strict=True):
        if not ok(getattr(rec, slot)):
            setattr(rec, slot, 0 if slot == "retry_attempt" else None)
            bad += 1
    return bad


def _policy(attrs: Mapping[str, Any]) -> PolicyEvent:
    return PolicyEvent(
        reason=_as_str(attrs.get(n.EVENT_POLICY_REASON)) or "",
        code=_as_str(attrs.get(n.EVENT_POLICY_CODE)) or "",
        status=_status_code(attrs.get(n.EVENT_POLICY_STATUS)),
    )


def _status_code(x: Any) -> int | None:
    code = _as_int(x)
    return code if code.__class__ is int else None


_META_PREFIX: Final = n.ATTR_METADATA_PREFIX
_META_LEN: Final = len(_META_PREFIX)


def metadata_of(pairs: Iterable[tuple[str, Any]]) -> dict[str, str] | None:
    """The ``alephant.metadata.*`` attributes among (key, plain value) pairs, prefix stripped.

    Read from the spans of a session that are not requests (its session, run
    and tool spans carry the same dimensions): the request spans, the bulk of
    a big file, pay nothing for it.
    """
    found = None
    for key, value in pairs:
        if key.startswith(_META_PREFIX) and len(key) > _META_LEN:
            text = _as_str(value)
            if text is not None:
                if found is None:
                    found = {}
                found[key[_META_LEN:]] = text
    return found


def _finish(rec: SpanRecord) -> None:
    """Infer the kind of spans written without ``alephant.span.kind``."""
    if rec.kind is not None or rec.session_id is None:
        return
    if rec.name == n.SESSION_SPAN_NAME:
        rec.kind = n.SPAN_KIND_SESSION
    elif rec.name.startswith(n.RUN_SPAN_PREFIX) and rec.run_id is not None:
        rec.kind = n.SPAN_KIND_RUN
    elif rec.tool_name is not None and rec.name.startswith(n.OPERATION_EXECUTE_TOOL):
        rec.kind = n.SPAN_KIND_TOOL
    elif rec.request_id is not None or rec.input_tokens is not None or rec.cost_usd is not None:
        rec.kind = n.SPAN_KIND_REQUEST


# --- OTLP/JSON ------------------------------------------------------------------


def _scope_spans(rs: Mapping[str, Any]) -> Iterable[Any]:
    ss = rs.get("scopeSpans")
    if ss is None:
        ss = rs.get("instrumentationLibrarySpans") or rs.get("scope_spans") or ()
    return ss


def span_ids(sp: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id or None) of an OTLP/JSON span, as hex.

    The Collector and this package write hex; other encodings (base64, as
    protobuf JSON mapping has it) are normalised.
    """
    tid = sp.get("traceId", "")
    sid = sp.get("spanId", "")
    pid = sp.get("parentSpanId") or None
    if len(tid) != 32:
        tid = normalize_id(tid)
    if len(sid) != 16:
        sid = normalize_id(sid)
    if pid is not None and len(pid) != 16:
        pid = normalize_id(pid) or None
    return tid, sid, pid


def _service(rs: Mapping[str, Any]) -> str | None:
    resource = rs.get("resource")
    if not isinstance(resource, dict):
        return None
    for kv in resource.get("attributes") or ():
        if kv.get("key") == "service.name":
            return _as_str(_plain(kv.get("value") or {}))
    return None


def records_from_otlp(resource_spans: Iterable[Any]) -> Iterator[SpanRecord]:
    """Every span in OTLP/JSON ``resourceSpans`` as a :class:`SpanRecord`.

    Raises:
        KeyError, TypeError, ValueError, AttributeError: The JSON is not
            OTLP; the caller counts the line as corrupt.
    """
    spec = _SPEC
    aliases = _ALIASES
    rollup_keys = _ROLLUP
    for rs in resource_spans:
        service = _service(rs)
        for ss in _scope_spans(rs):
            for sp in ss.get("spans") or ():
                tid, sid, pid = span_ids(sp)
                rec = SpanRecord(tid, sid, pid, sp.get("name") or "")
                rec.start_ns = int(sp.get("startTimeUnixNano") or 0)
                rec.end_ns = int(sp.get("endTimeUnixNano") or 0)
                rec.service = service
                status = sp.get("status")
                if status:
                    if status.get("code") in _ERROR_CODES:
                        rec.error = True
                    rec.status_message = status.get("message") or ""
                rollup: dict[str, Any] | None = None
                alias: dict[str, Any] | None = None
                for kv in sp.get("attributes") or ():
                    key = kv["key"]
                    s = spec.get(key)
                    if s is not None:
                        v = kv["value"]
                        x = v.get("stringValue")
                        setattr(rec, s[0], s[1](_plain(v) if x is None else x))
                    elif key in rollup_keys:
                        if rollup is None:
                            rollup = {}
                        rollup[rollup_keys[key]] = _plain(kv["value"])
                    elif key in aliases:
                        if alias is None:
                            alias = {}
                        alias[aliases[key]] = _as_str(_plain(kv["value"]))
                if alias:
                    for slot, value in alias.items():
                        if getattr(rec, slot) is None:
                            setattr(rec, slot, value)
                if rollup is not None:
                    rec.rollup, rec.corrupt_values = _rollup(rollup)
                events = sp.get("events")
                if events:
                    policies = [
                        _policy({kv["key"]: _plain(kv["value"]) for kv in ev.get("attributes") or ()})
                        for ev in events
                        if ev.get("name") == n.EVENT_POLICY
                    ]
                    if policies:
                        rec.policy_events = tuple(policies)
                        rec.intercepted = True
                if rec.retry_attempt is None:
                    rec.retry_attempt = 0
                rec.corrupt_values += drop_impossible(rec)
                _finish(rec)
                if rec.kind != n.SPAN_KIND_REQUEST and rec.session_id is not None:
                    rec.metadata = metadata_of((kv["key"], _plain(kv["value"])) for kv in sp.get("attributes") or ())
                yield rec


# --- already-flat attributes (Jaeger, Phoenix) -------------------------------


def record_from_flat(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    start_ns: int,
    end_ns: int,
    error: bool,
    status_message: str,
    attributes: Mapping[str, Any],
    events: Iterable[tuple[str, Mapping[str, Any]]] = (),
    service: str | None = None,
) -> SpanRecord:
    """A :class:`SpanRecord` from plain values (attribute name -> value)."""
    rec = SpanRecord(normalize_id(trace_id), normalize_id(span_id), normalize_id(parent_span_id) or None, name)
    rec.start_ns = start_ns
    rec.end_ns = end_ns
    rec.error = error
    rec.status_message = status_message
    rec.service = service
    rollup: dict[str, Any] = {}
    for key, value in attributes.items():
        s = _SPEC.get(key)
        if s is not None:
            setattr(rec, s[0], s[1](value))
        elif key in _ROLLUP:
            rollup[_ROLLUP[key]] = value
    for key, slot in _ALIASES.items():
        if getattr(rec, slot) is None and key in attributes:
            setattr(rec, slot, _as_str(attributes[key]))
    if rollup:
        rec.rollup, rec.corrupt_values = _rollup(rollup)
    policies = [_policy(attrs) for ev_name, attrs in events if ev_name == n.EVENT_POLICY]
    if policies:
        rec.policy_events = tuple(policies)
        rec.intercepted = True
    if rec.retry_attempt is None:
        rec.retry_attempt = 0
    rec.corrupt_values += drop_impossible(rec)
    _finish(rec)
    if rec.kind != n.SPAN_KIND_REQUEST and rec.session_id is not None:
        rec.metadata = metadata_of(attributes.items())
    return rec
