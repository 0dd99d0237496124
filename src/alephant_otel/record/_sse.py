"""Server-sent event framing: which events of a stream are decoded, and how.

Streams are not decoded event by event. The leading events (model and id) are; then, in the
stream's last 4 KB, the events whose raw bytes name a field that matters (usage, a finish or stop
reason, a terminal or error event); before that tail, only events with a finish or stop reason
(a choice of an ``n > 1`` stream that ended early, looked for unless the request body shows a
single choice was asked for), and the last usage object when the tail has none. Errors and
terminal events end a stream, so they are in its tail. Content deltas are skipped by C-level
searches, never decoded.
"""

from __future__ import annotations

import re
from typing import Any, Final

from alephant_otel.record._acc import _USAGE_RE, _Acc, _loads

__all__ = ["parse_sse"]

# SSE events worth decoding; anything else (content deltas) is skipped unread.
# Keys inside JSON string values are escaped (\"usage\"), so text the model
# writes cannot match these.
_INTERESTING: Final = re.compile(
    rb'"usage"\s*:\s*\{|"(?:finish|stop)_reason"\s*:\s*"|"error"\s*:\s*[{"]|"type"\s*:\s*"(?:error|message_st|response\.)'
)


#: Finish/stop reasons with a string value, the one marker looked for before a stream's tail.
_MID_STREAM: Final = re.compile(rb'_reason"\s*:\s*"')


#: How many leading events may be read for the model and id.
_LEADING_EVENTS: Final = 8


#: How much of a stream's end is scanned for every marker (widened to whole events).
_TAIL_SCAN: Final = 4 << 10


_SSE_FIELDS: Final = (b"event:", b"id:", b"retry:", b":")


def parse_sse(body: bytes, acc: _Acc, request_body: bytes | None = None) -> None:
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    interesting = _INTERESTING.search
    size = len(body)
    # The leading events, until one names the model or id (Anthropic pings first).
    pos = 0
    for _ in range(_LEADING_EVENTS):
        if pos >= size or acc.model is not None or acc.response_id is not None:
            break
        end = body.find(b"\n\n", pos)
        end = size if end < 0 else end
        _sse_block(body[pos:end], acc, True, interesting)
        pos = end + 2
    first_end = pos = min(pos, size)
    # What ends a stream (usage, the last finish reason, a terminal or error
    # event) is in its last events: only the tail is scanned for every marker.
    # Scanning a whole 130 KB stream with that regex cost ~290 µs, most of what
    # watching a stream added; one literal-prefix pass over the middle for the
    # finish reasons of choices that ended early (n > 1) costs a sixth of that,
    # and is skipped when the request surely asked for one choice.
    tail = max(pos, size - _TAIL_SCAN)
    if tail > pos:
        boundary = body.rfind(b"\n\n", pos, tail)
        tail = pos if boundary < 0 else boundary + 2
    if tail > pos:
        if _several_choices(request_body, tail - pos):
            _fold_matches(body, _MID_STREAM.finditer(body, pos, tail), pos, tail, acc, interesting)
        pos = tail
    pos = _fold_matches(body, _INTERESTING.finditer(body, pos), pos, size, acc, interesting)
    if acc.input is None and acc.output is None and tail > first_end:
        # No usage at the end: the last one earlier, if any (some providers send it on every chunk).
        at = _last_usage(body, first_end, tail)
        if at >= 0:
            start, end = _event_bounds(body, at, at, first_end, tail)
            acc.salvage(body[start:end])
    # OpenAI's terminal "[DONE]" event, when the scan above did not read it. (An
    # alternative for it in the same regex makes the scan 3x slower: the other
    # alternatives share a leading quote the engine skips ahead to.)
    done = body.rfind(b"[DONE]", pos)
    if done >= 0:
        start, end = _event_bounds(body, done, done, pos, size)
        _sse_block(body[start:end], acc, False, interesting)


def _several_choices(request_body: bytes | None, middle: int) -> bool:
    """Whether a stream's choices may have finished before its tail.

    Only a request for several choices (OpenAI's ``n``, legacy ``best_of``)
    has them. Looking for those keys costs about what scanning the middle
    does per byte, so an unknown request body, or one longer than the
    middle, means "maybe". A string value ``"n"`` also means "maybe": the
    guess may only err towards scanning.
    """
    if request_body is None or len(request_body) > middle:
        return True
    return b'"n"' in request_body or b'"best_of"' in request_body


def _fold_matches(body: bytes, matches: Any, pos: int, limit: int, acc: _Acc, interesting: Any) -> int:
    """Fold each event (between ``pos`` and ``limit``) that a match falls in, once; returns the new ``pos``."""
    for match in matches:
        at = match.start()
        if at < pos:
            continue  # inside the event just read
        start, end = _event_bounds(body, at, match.end(), pos, limit)
        _sse_block(body[start:end], acc, False, interesting)
        pos = end + 2
    return pos


def _event_bounds(body: bytes, at: int, after: int, lo: int, hi: int) -> tuple[int, int]:
    """Where the event holding ``body[at:after]`` starts and ends, within ``lo``..``hi``."""
    start = body.rfind(b"\n\n", lo, at)
    end = body.find(b"\n\n", after, hi)
    return (lo if start < 0 else start + 2), (hi if end < 0 else end)


def _last_usage(body: bytes, start: int, end: int) -> int:
    """Where the last ``"usage": {`` between ``start`` and ``end`` begins, or -1."""
    while True:
        at = body.rfind(b'"usage"', start, end)
        if at < 0 or _USAGE_RE.match(body, at) is not None:
            return at
        end = at


def _sse_block(block: bytes, acc: _Acc, first: bool, interesting: Any) -> bool:
    """Fold the events of ``block`` (whole lines); returns whether the first event is still to come."""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:])
            continue
        if line:
            if not line.startswith(_SSE_FIELDS) and b'"usage"' in line:
                acc.salvage(line)  # the far side of the head/tail cut
            continue
        if not data:
            continue
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        data = []
        first = _sse_event(payload, acc, first, interesting)
    if data:
        first = _sse_event(b"\n".join(data), acc, first, interesting)
    return first


def _sse_event(payload: bytes, acc: _Acc, first: bool, interesting: Any) -> bool:
    """Fold one event's data; returns whether the first event is still to come."""
    payload = payload.strip()
    if not payload:
        return first
    if payload == b"[DONE]":
        acc.terminal = True
        return first
    if not first and interesting(payload) is None:
        return first
    try:
        obj = _loads(payload)
    except (ValueError, RecursionError):
        acc.salvage(payload)  # an event cut by the head/tail gap, or junk
        return first
    if isinstance(obj, dict):
        acc.obj(obj)
        return False
    return first
