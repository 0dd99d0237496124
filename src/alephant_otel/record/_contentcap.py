"""Content capture: the switch, the size caps and the truncation marker.

Capture is off unless switched on, by the standard variable
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``true``/``false``, as
the contrib ``openai-v2`` instrumentation reads it, or the modes of
``opentelemetry-util-genai``: ``NO_CONTENT``, ``SPAN_ONLY``, ``EVENT_ONLY``,
``SPAN_AND_EVENT``) or by ``configure(capture_content=...)``, which overrides it.
``true`` means ``SPAN_ONLY``: the attributes on the request span, which every
backend and this package's own views read.

Caps are on the JSON, in bytes (UTF-8): each message at most
``message_limit`` (default 16 KB), all of one span's content at most
``span_limit`` (default 64 KB). A message over its share keeps its role and
every part, with its longest strings cut and a marker saying how much was cut:
a message is never dropped whole.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from alephant_otel import _names as n

__all__ = ["DEFAULT_MESSAGE_LIMIT", "DEFAULT_SPAN_LIMIT", "MARKER", "Capture", "fit_messages", "resolve_capture"]

_log = logging.getLogger(__name__)

DEFAULT_MESSAGE_LIMIT: Final = 16 << 10
DEFAULT_SPAN_LIMIT: Final = 64 << 10
#: The smallest share of the span cap a message gets: its role, part types and a marker.
_FLOOR: Final = 256
#: What ends a cut string; ``{n}`` is the number of characters cut.
MARKER: Final = "…[truncated: {n} more characters]"
_MARKER_ROOM: Final = 48

_ON: Final = frozenset({"true", "1", "yes", "on", "span_only"})
_OFF: Final = frozenset({"false", "0", "no", "off", "", "no_content"})
_EVENT: Final = frozenset({"event_only"})
_BOTH: Final = frozenset({"span_and_event"})


@dataclass(frozen=True, slots=True)
class Capture:
    """How content is captured when it is on (off is ``None``, never an instance)."""

    on_span: bool = True
    on_event: bool = False
    message_limit: int = DEFAULT_MESSAGE_LIMIT
    span_limit: int = DEFAULT_SPAN_LIMIT


def _mode(raw: str) -> tuple[bool, bool] | None:
    """(on the span, on the event) for a switch value; None when it is not one."""
    value = raw.strip().lower()
    if value in _ON:
        return True, False
    if value in _OFF:
        return False, False
    if value in _EVENT:
        return False, True
    if value in _BOTH:
        return True, True
    return None


def _env_limit(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < _FLOOR:
        _log.error("ignoring %s=%r: expected a number of bytes >= %d; using %d", name, raw, _FLOOR, default)
        return default
    return value


def _arg_limit(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < _FLOOR:
        raise ValueError(f"{what} must be a number of bytes >= {_FLOOR}, not {value!r}")
    return value


def resolve_capture(
    capture_content: bool | str | None = None,
    message_limit: int | None = None,
    span_limit: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Capture | None:
    """The capture settings: arguments over the environment; None when capture is off.

    Raises:
        ValueError: An argument is invalid (a bad environment value logs and means off / the default).
    """
    env = os.environ if env is None else env
    if capture_content is None:
        raw = env.get(n.ENV_CAPTURE_CONTENT, "")
        mode = _mode(raw)
        if mode is None:
            _log.error(
                "ignoring %s=%r: expected true, false, NO_CONTENT, SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT; "
                "content capture stays off",
                n.ENV_CAPTURE_CONTENT,
                raw,
            )
            mode = (False, False)
    elif isinstance(capture_content, bool):
        mode = (capture_content, False)
    elif isinstance(capture_content, str) and _mode(capture_content) is not None:
        mode = _mode(capture_content)
    else:
        raise ValueError(
            f"capture_content must be True, False or one of NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, "
            f"not {capture_content!r}"
        )
    assert mode is not None  # for mypy: every branch above set it
    message = (
        _arg_limit(message_limit, "content_message_limit")
        if message_limit is not None
        else _env_limit(env, n.ENV_CONTENT_MESSAGE_LIMIT, DEFAULT_MESSAGE_LIMIT)
    )
    span = (
        _arg_limit(span_limit, "content_span_limit")
        if span_limit is not None
        else _env_limit(env, n.ENV_CONTENT_SPAN_LIMIT, DEFAULT_SPAN_LIMIT)
    )
    if not (mode[0] or mode[1]):
        return None
    return Capture(mode[0], mode[1], message, span)


# --- caps ------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """The JSON of captured content: compact, non-ASCII kept as it is (the caps count UTF-8 bytes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _size(value: Any) -> int:
    return len(dumps(value).encode("utf-8"))


def _leaves(message: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The (part, key) of every cuttable string of a message; structured values become their JSON text."""
    out: list[tuple[dict[str, Any], str]] = []
    parts = message.get("parts")
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        for key in ("content", "arguments", "response", "uri"):
            value = part.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                part[key] = value = dumps(value)
            if value:
                out.append((part, key))
    return out


def cut(text: str, keep: int) -> str:
    """``text``'s first ``keep`` characters and the marker (``text`` itself when it fits)."""
    if keep >= len(text):
        return text
    keep = max(0, keep)
    return text[:keep] + MARKER.format(n=len(text) - keep)


def _fit(message: dict[str, Any], budget: int) -> dict[str, Any]:
    """``message`` cut to at most ``budget`` bytes of JSON where its strings allow; changed in place."""
    over = _size(message) - budget
    if over <= 0:
        return message
    leaves = _leaves(message)
    # Longest first: a long document loses its tail before a short question loses anything.
    leaves.sort(key=lambda leaf: len(leaf[0][leaf[1]]), reverse=True)
    for part, key in leaves:
        if over <= 0:
            break
        text = part[key]
        # A character is at least one byte of JSON, so cutting ``over`` characters (and room
        # for the marker) is enough unless this string is too short, then the next one helps.
        part[key] = cut(text, len(text) - over - _MARKER_ROOM)
        over = _size(message) - budget
    return message


def fit_messages(groups: list[list[dict[str, Any]]], message_limit: int, span_limit: int) -> list[list[dict[str, Any]]]:
    """Cap every message of ``groups`` (system, input, output) to its share; no message is dropped.

    Each message gets at most ``message_limit`` bytes; when all of them are
    over ``span_limit`` together, the span's budget is shared out: small
    messages keep what they have, the big ones share the rest equally (each
    at least a small floor, so with very many messages the total may pass the
    cap rather than lose one).
    """
    flat = [m for group in groups for m in group]
    sizes = [min(_size(m), message_limit) for m in flat]
    shares = list(sizes)
    # The attributes' own brackets and commas count too: two a group, one a message.
    budget = span_limit - 2 * len(groups) - len(flat)
    if sum(sizes) > budget and flat:
        left = budget
        order = sorted(range(len(flat)), key=sizes.__getitem__)
        for rank, i in enumerate(order):
            fair = max(_FLOOR, left // (len(order) - rank))
            shares[i] = min(sizes[i], fair)
            left = max(0, left - shares[i])
    for message, share in zip(flat, shares, strict=True):
        _fit(message, share)
    return groups
