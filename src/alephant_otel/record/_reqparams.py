"""The request parameters a GenAI request sent, read from its body for the request span.

``gen_ai.request.temperature``, ``max_tokens``, ``top_p``, ``stop_sequences``,
``seed`` and ``choice.count``, from the top level of an OpenAI chat
completion (``max_completion_tokens`` or ``max_tokens``, ``stop``, ``n``), a
Response (``max_output_tokens``) or an Anthropic message (``max_tokens``,
``stop_sequences``).

A small body is parsed once when the request is sent
(:func:`~alephant_otel.record._requestbody.read_request`), and its
parameters are read from that with :func:`params_of`. A larger one is probed
where the response is recorded, not in the request hook: a request with none
of the keys pays one regex scan of its body and no parse; one that has them
is parsed (the keys must be top-level: a tool's JSON schema or a tool call's
input may hold a nested ``temperature``). A body over :data:`PARSE_LIMIT` is
not parsed and its parameters are not recorded.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel.record._acc import _loads  # orjson when installed; json the judge of what it rejects

__all__ = ["PARSE_LIMIT", "params_of", "request_params"]

#: The top-level keys read (see _from).
_KEYS: Final = frozenset(
    {"temperature", "max_completion_tokens", "max_tokens", "max_output_tokens", "top_p", "stop", "stop_sequences",
     "seed", "n"}
)  # fmt: skip
#: Any of the keys, as a JSON key (a string value cannot be followed by a colon).
_PROBE: Final = re.compile(rb'"(?:' + "|".join(map(re.escape, sorted(_KEYS))).encode() + rb')"\s*:')
#: Bodies larger than this are not parsed for their parameters (a request of megabytes of prompt).
PARSE_LIMIT: Final = 1 << 20
_MAX_STOPS: Final = 16
_STOP_CHARS: Final = 256
_INT64: Final = 1 << 63


def _number(value: Any) -> float | None:
    if type(value) in (int, float) and math.isfinite(value):
        return float(value)
    return None


def _count(value: Any) -> int | None:
    # bool is an int subclass: ``true`` is no count.
    return value if type(value) is int and -_INT64 <= value < _INT64 else None


def _stops(value: Any) -> tuple[str, ...] | None:
    if type(value) is str:
        value = [value]
    if type(value) is not list:
        return None
    stops = tuple(s[:_STOP_CHARS] for s in value[:_MAX_STOPS] if type(s) is str)
    return stops or None


def request_params(body: bytes | None) -> dict[str, AttributeValue] | None:
    """The ``gen_ai.request.*`` parameters ``body`` sets, or None when it sets none. Never raises."""
    try:
        if not body or _PROBE.search(body) is None or len(body) > PARSE_LIMIT:
            return None
        doc = _loads(body)
        if type(doc) is not dict:
            return None
        return _from(doc) or None
    except Exception:  # a body that is not JSON, or too deep: nothing to record
        return None


def params_of(doc: dict[str, Any]) -> dict[str, AttributeValue]:
    """The ``gen_ai.request.*`` parameters of a request body already parsed (a new dict, maybe empty). Never raises."""
    try:
        # Most chat calls send only messages and model: one C-level test, no lookups.
        return {} if _KEYS.isdisjoint(doc) else _from(doc)
    except Exception:
        return {}


def _from(doc: dict[str, Any]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    temperature = _number(doc.get("temperature"))
    if temperature is not None:
        out[n.GEN_AI_REQUEST_TEMPERATURE] = temperature
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        limit = _count(doc.get(key))
        if limit is not None:
            out[n.GEN_AI_REQUEST_MAX_TOKENS] = limit
            break
    top_p = _number(doc.get("top_p"))
    if top_p is not None:
        out[n.GEN_AI_REQUEST_TOP_P] = top_p
    stops = _stops(doc.get("stop_sequences", doc.get("stop")))
    if stops is not None:
        out[n.GEN_AI_REQUEST_STOP_SEQUENCES] = stops
    seed = _count(doc.get("seed"))
    if seed is not None:
        out[n.GEN_AI_REQUEST_SEED] = seed
    choices = _count(doc.get("n"))
    if choices is not None and choices != 1:  # the conventions: recorded when not 1
        out[n.GEN_AI_REQUEST_CHOICE_COUNT] = choices
    return out
