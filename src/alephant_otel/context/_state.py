"""The active context read as alephant ids: baggage in, a cached :class:`State` out.

Baggage is the carrier, so ``session()``/``run()``, users who set baggage by hand with the OTel
API, and context propagated from another process all look the same to the request hook: it reads
the active baggage through :func:`active_state`. Everything derived from one set of ids (the
header tuple, span attributes, the ``Current`` snapshot) is computed once and cached by those ids,
because the hook runs on every request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, cast

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel.context._dimensions import (
    dimension_attributes,
    metadata_of,
    warned_keys,
)
from alephant_otel.context._totals import RequestTotals
from alephant_otel.context._validate import is_valid

__all__ = ["Current", "State", "active_state", "active_totals", "clear_cache", "current", "state_for"]

_log = logging.getLogger(__name__)

# Baggage key -> validation kind. The parent-run key is internal but travels
# like the others so a run continued in another process knows its parent.
_KINDS: Final = {
    n.BAGGAGE_SESSION_ID: "id",
    n.BAGGAGE_SESSION_NAME: "name",
    n.BAGGAGE_SESSION_PATH: "path",
    n.BAGGAGE_AGENT_ID: "id",
    n.BAGGAGE_RUN_ID: "id",
    n.BAGGAGE_RUN_PARENT_ID: "id",
    n.BAGGAGE_USER_ID: "id",
}


_KEYS: Final = tuple(_KINDS)


_TOTALS_KEY: Final = otel_context.create_key("alephant_otel.totals")


@dataclass(frozen=True)
class Current:
    """The alephant ids active in the current context (``None`` where unset).

    Examples:
        >>> from alephant_otel import current, session
        >>> with session("sess_1", name="Refund"):
        ...     current().session_id
        'sess_1'
    """

    session_id: str | None = None
    session_name: str | None = None
    session_path: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    parent_run_id: str | None = None
    #: Who the session serves (``session(user_id=...)``).
    user_id: str | None = None
    #: The user's own dimensions (``session(metadata=...)``, ``run(metadata=...)``), read-only.
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class State:
    """Everything the hot path derives from one set of ids, computed once."""

    current: Current
    #: (header name, value) pairs for the gateway, in wire order.
    headers: tuple[tuple[str, str], ...]
    #: Attributes stamped on every span started in this context.
    span_attributes: dict[str, AttributeValue]
    #: ``headers`` as httpx keeps them internally: (name, lower-case name,
    #: value), ASCII-encoded once here instead of on every request.
    raw_headers: tuple[tuple[bytes, bytes, bytes], ...] = ()


_EMPTY: Final = State(Current(), (), {})


_cache: dict[tuple[object, ...], State] = {}


_CACHE_LIMIT: Final = 4096


_warned_keys: set[str] = warned_keys  # one set with the metadata keys' warnings


def _warn_dropped(key: str) -> None:
    # One warning per key per process: inbound baggage is outside data and a
    # bad value would otherwise log on every request.
    if key not in _warned_keys:
        _warned_keys.add(key)
        _log.warning(
            "dropping baggage entry %r: its value is not a valid HTTP header value "
            "(control characters, non-ASCII, or too long); further drops of this key are silent",
            key,
        )


def _derive(values: tuple[object, ...]) -> State:
    clean: dict[str, str] = {}
    for key, value in zip(_KEYS, values[:-1], strict=True):
        if value is None:
            continue
        if is_valid(_KINDS[key], value):
            clean[key] = cast(str, value)
        else:
            _warn_dropped(key)
    dimensions, metadata = dimension_attributes(clean.get(n.BAGGAGE_USER_ID), cast(Any, values[-1]))
    if not clean and not metadata:
        return _EMPTY
    cur = Current(
        session_id=clean.get(n.BAGGAGE_SESSION_ID),
        session_name=clean.get(n.BAGGAGE_SESSION_NAME),
        session_path=clean.get(n.BAGGAGE_SESSION_PATH),
        agent_id=clean.get(n.BAGGAGE_AGENT_ID),
        run_id=clean.get(n.BAGGAGE_RUN_ID),
        parent_run_id=clean.get(n.BAGGAGE_RUN_PARENT_ID),
        user_id=clean.get(n.BAGGAGE_USER_ID),
        metadata=metadata,
    )
    headers = tuple((header, clean[key]) for key, header in n.BAGGAGE_TO_HEADER.items() if key in clean)
    attrs: dict[str, AttributeValue] = {}
    for key in n.BAGGAGE_KEYS:
        if key in clean:
            attrs[key] = clean[key]
    if cur.session_id is not None:
        attrs[n.GEN_AI_CONVERSATION_ID] = cur.session_id
    if cur.agent_id is not None:
        attrs[n.GEN_AI_AGENT_ID] = cur.agent_id
    attrs.update(dimensions)  # span attributes only: never headers, never metric dimensions
    # Values passed is_valid(): visible ASCII, so the encoding cannot fail.
    raw = tuple((h.encode("ascii"), h.lower().encode("ascii"), v.encode("ascii")) for h, v in headers)
    return State(cur, headers, attrs, raw)


# The last baggage seen and its state: a request and the spans inside it read
# the same baggage several times, and comparing two small dicts whose values are
# the very same objects is cheaper than building and hashing the key tuple.
_last: tuple[dict[str, object], State] = ({}, _EMPTY)


# The last context seen and its state. Contexts are immutable, so the same
# object means the same baggage: every span and request started under one
# context (the common case) skips even the baggage comparison below.
_last_context: tuple[Context | None, State] = (None, _EMPTY)


def active_state(ctx: Context | None = None) -> State:
    """The derived state for ``ctx`` (default: the current context). Never raises."""
    global _last, _last_context  # noqa: PLW0603 - tuples, swapped atomically
    if ctx is None:
        ctx = otel_context.get_current()
    seen = _last_context
    if ctx is seen[0]:
        return seen[1]
    entries = baggage.get_all(ctx)
    if not entries:
        _last_context = (ctx, _EMPTY)
        return _EMPTY
    last = _last
    if entries == last[0]:
        _last_context = (ctx, last[1])
        return last[1]
    values = (*[entries.get(key) for key in _KEYS], metadata_of(entries))
    state = _cache.get(values)
    if state is None:
        state = _derive(values)
        if len(_cache) >= _CACHE_LIMIT:
            # A long-running worker sees unbounded distinct sessions: bound the
            # cache rather than keep every session ever seen.
            _cache.clear()
        _cache[values] = state
    _last = (dict(entries), state)
    _last_context = (ctx, state)
    return state


#: (span, state) of the span the processor started last. The request hook runs
#: right after its span starts, under the same baggage: it takes the state from
#: here (``state_for``) instead of reading the baggage again (~6 calls). One tuple,
#: swapped whole: another thread's span in between only makes the check miss. The
#: hook empties it, so a request's span is not kept alive by it (at most the last
#: span started outside any request is, until the next one starts).
_NOTHING_STARTED: Final[tuple[object, State]] = (None, _EMPTY)


started: tuple[object, State] = _NOTHING_STARTED


def state_for(span: object) -> State:
    """The state of ``span``'s start if the processor just started it, else :func:`active_state`."""
    global started  # noqa: PLW0603 - a tuple, swapped atomically
    last = started
    if last[0] is span:
        started = _NOTHING_STARTED
        return last[1]
    return active_state()


def clear_cache() -> None:
    """Forget every derived state (tests: a fresh process as far as the hot path goes)."""
    global _last, _last_context, started  # noqa: PLW0603
    _last = ({}, _EMPTY)
    _last_context = (None, _EMPTY)
    started = _NOTHING_STARTED
    _cache.clear()


def active_totals(ctx: Context | None = None) -> tuple[RequestTotals, ...]:
    """The roll-up counters of every session/run scope enclosing ``ctx``."""
    totals = otel_context.get_value(_TOTALS_KEY, ctx)
    return cast("tuple[RequestTotals, ...]", totals) if totals else ()


def current() -> Current:
    """Return the alephant ids active in the current context.

    Works the same whether the ids came from :func:`session`/:func:`run`, from
    baggage set by hand, or from context propagated by another service.
    Invalid baggage values read as ``None``.
    """
    return active_state().current
