"""GenAI response parsing: model, ids, token usage, finish reasons, policy refusals.

Called once per gateway response, when its body ends, with the bytes the body
watcher kept: the whole body, or for long bodies their head and tail joined
by a blank line (so the middle is missing and either cut may split an event,
a JSON value or a UTF-8 character). Formats: OpenAI chat completions, legacy
completions, Responses and embeddings; Anthropic messages; JSON and
server-sent events; the error bodies of both. Nothing here raises: malformed
input yields fewer fields.

``input_tokens`` follows the GenAI semantic conventions and genai-prices: it
*includes* cached input tokens. OpenAI's ``prompt_tokens`` / Responses
``input_tokens`` already do; Anthropic reports cache reads and writes beside
``input_tokens``, so they are added here.

Streams: :mod:`._sse`; compressed bodies: :mod:`._decode`; the fields: :mod:`._acc`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from typing import Any, Final

from alephant_otel._impossible import MAX_TOKENS as _MAX_TOKENS
from alephant_otel.record._acc import (
    _POLICY_FINISH,
    _STR_LIMIT,
    ParsedResponse,
    PolicyHit,
    _Acc,
    _first_loads,
    _json_str,
    _loads,
)
from alephant_otel.record._decode import decode_body
from alephant_otel.record._requestbody import _JSON_STR, _MODEL_RE
from alephant_otel.record._sse import parse_sse

__all__ = [
    "ParsedResponse",
    "PolicyHit",
    "parse_body",
    "parse_response",
]


_log = logging.getLogger(__name__)


_ID_RE: Final = re.compile(rb'"id"\s*:\s*' + _JSON_STR)


_ERROR_RE: Final = re.compile(rb'"error"\s*:\s*(?=[{"])')


#: Holds True once an internal parse error has been logged (one warning, not a flood).
_internal_error_logged: list[bool] = []


@functools.lru_cache(maxsize=64)  # response content types repeat
def _content_kinds(content_type: str | None) -> tuple[bool, bool]:
    """(names an event stream, names JSON) of a response ``content-type``."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    return "event-stream" in ctype, "json" in ctype


def _sniff(body: bytes, content_type: str | None) -> str:
    kinds = _content_kinds(content_type)
    if kinds[0]:
        return "sse"
    head = body[:64].lstrip()
    first = head[:1]
    if first in (b"{", b"["):  # checked first: cannot be an event stream, and cheap
        return "json"
    if head.startswith((b"data:", b"event:", b": ")):
        return "sse"
    return "json" if kinds[1] else "other"


def _parse_json(body: bytes, acc: _Acc, whole: bool, failed: bool) -> bool:
    """Fold a JSON body (``failed``: of a 4xx/5xx answer); returns whether it looks complete."""
    if whole:
        try:
            obj = _loads(body)
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(obj, dict):
                acc.obj(obj)
            return True
    # Cut or broken: pick out what regexes can still find. Embedding and large
    # completion bodies put model and usage at the end, in the kept tail.
    head = body[:4096]
    if acc.response_id is None and head.lstrip().startswith(b"{"):
        match = _ID_RE.search(head)
        acc.response_id = _json_str(match.group(1)) if match else None
    match = _MODEL_RE.search(body)
    if match is not None:
        acc.model = _json_str(match.group(1))
    # Only an answer that failed is read for its error envelope: a cut 2xx body is a big
    # resource or list, whose "error" keys are the state of the things listed.
    err = _ERROR_RE.search(body) if failed else None
    if err is not None:
        try:
            obj, _ = json.JSONDecoder().raw_decode(body[err.end() : err.end() + 8192].decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            obj = None
        if obj is not None:
            acc.error(obj)
    acc.salvage(body)
    return body.rstrip().endswith((b"}", b"]"))


def parse_response(
    body: bytes,
    *,
    status_code: int,
    content_type: str | None,
    content_encoding: str | None = None,
    path: str = "",
    whole: bool = True,
    request_body: bytes | None = None,
) -> ParsedResponse:
    """Read what a gateway response body says about the call. Never raises.

    Args:
        body: The body bytes as kept by the watcher: whole, or head and tail
            joined by ``b"\\n\\n"``.
        status_code: The HTTP status.
        content_type: The response ``content-type`` (the body is sniffed when
            it is missing or unusual).
        content_encoding: The response ``content-encoding``; gzip and deflate
            are decoded (a cut body only up to the cut), ``br`` and ``zstd``
            when httpx or httpx2 can decode them too.
        path: The request path (unused today; kept for format hints).
        whole: Whether ``body`` is the complete body.
        request_body: The request's body, when known. A stream's middle is
            only searched for choices that finished early when the request
            may have asked for several (``n`` or ``best_of``); without it, it
            always is.

    Returns:
        The parsed fields; on unreadable input, an empty result (still with a
        policy hit for HTTP 403/451).

    Examples:
        >>> r = parse_response(
        ...     b'{"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [],'
        ...     b' "usage": {"prompt_tokens": 12, "completion_tokens": 3}}',
        ...     status_code=200, content_type="application/json")
        >>> r.response_model, r.input_tokens, r.output_tokens
        ('gpt-4o-mini', 12, 3)
    """
    return parse_body(body, status_code, content_type, content_encoding, whole, request_body)


def parse_body(
    body: bytes,
    status_code: int,
    content_type: str | None,
    content_encoding: str | None,
    whole: bool,
    request_body: bytes | None,
) -> ParsedResponse:
    """:func:`parse_response`, arguments by position: the response hook's call (keywords cost more to pass)."""
    try:
        return _parse(body, status_code, content_type, content_encoding, whole, request_body)
    except Exception:
        # A shape nothing above foresaw reads as "nothing known"; log once, it is our bug.
        if not _internal_error_logged:
            _internal_error_logged.append(True)
            _log.warning("alephant_otel: could not parse a gateway response body", exc_info=True)
        else:
            _log.debug("alephant_otel: could not parse a gateway response body", exc_info=True)
        try:
            status = int(status_code)
        except Exception:
            status = 0
        hit = PolicyHit(f"HTTP {status}", None, status) if status in (403, 451) else None
        return ParsedResponse(policy=hit)


def _count(value: Any) -> bool:
    """Whether ``value`` is a token count the fold would keep (an int in range)."""
    return type(value) is int and 0 <= value <= _MAX_TOKENS


def _plain_chat(obj: dict[str, Any]) -> ParsedResponse | None:
    """A plain chat completion read directly, or None when the fold must judge it.

    Nearly every gateway answer is one: ``"object": "chat.completion"``, one
    choice that finished for a reason that is no refusal, valid counts. Read
    here in straight-line code, it costs about half of the general fold
    (:meth:`_Acc.obj`, ``usage``, ``_choices``, ``result``), and reads the same
    fields the same way; anything else (several choices, a refusal, a count
    out of range, a field of an unexpected type) goes to the fold, which also
    warns about impossible counts. ``tests/test_usage.py`` holds the two equal
    on generated bodies. Only for a whole body of a status under 400.
    """
    if obj.get("object") != "chat.completion" or "type" in obj:
        return None
    choices = obj.get("choices")
    usage = obj.get("usage")
    if type(choices) is not list or len(choices) != 1 or type(usage) is not dict:
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return None
    message = choice.get("message")
    reason = choice.get("finish_reason")
    if (message is not None and (type(message) is not dict or message.get("refusal") is not None)) or type(
        reason
    ) is not str:
        return None
    reason = reason.strip()[:64]
    if not reason or reason in _POLICY_FINISH:
        return None
    get = usage.get
    inp, out = get("prompt_tokens"), get("completion_tokens")
    if not (_count(inp) and _count(out)):
        return None
    read = write = reasoning = None
    prompt = get("prompt_tokens_details")
    if prompt is not None:
        if type(prompt) is not dict:
            return None
        read, write = prompt.get("cached_tokens"), prompt.get("cache_write_tokens")
        if (read is not None and not _count(read)) or (write is not None and not _count(write)):
            return None
    done = get("completion_tokens_details")
    if done is not None:
        if type(done) is not dict:
            return None
        reasoning = done.get("reasoning_tokens")
        if reasoning is not None and not _count(reasoning):
            return None
    model = obj.get("model")
    model = (model.strip()[:_STR_LIMIT] or None) if type(model) is str else None
    rid = obj.get("id")
    rid = (rid.strip()[:_STR_LIMIT] or None) if type(rid) is str else None
    # Positional, in field order (see _Acc.result): no policy, no error, complete.
    return ParsedResponse(model, rid, inp, out, read, write, reasoning, (reason,), None, None, True)


def _parse(
    body: bytes,
    status: int,
    content_type: str | None,
    content_encoding: str | None,
    whole: bool,
    request_body: bytes | None = None,
) -> ParsedResponse:
    status = int(status)
    if (
        whole
        and status < 400
        and not content_encoding
        and type(body) is bytes
        and body[:1] == b"{"
        and not _content_kinds(content_type)[0]
    ):
        # A whole JSON answer (what _sniff and _parse_json would find): parsed once, and
        # a plain chat completion read without the fold.
        try:
            obj = _first_loads(body)
        except (ValueError, RecursionError):
            pass  # broken, or for json to judge (orjson rejects NaN, big ints): the general path below
        else:
            if type(obj) is dict:
                plain = _plain_chat(obj)
                if plain is not None:
                    return plain
            acc = _Acc()
            if isinstance(obj, dict):
                acc.obj(obj)
            return acc.result(status, True)
    acc = _Acc()
    raw = body if isinstance(body, bytes) else bytes(body or b"")
    data: bytes | None = raw
    readable_to_end = True
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        if not whole:
            # Compressed data cannot be read past the watcher's cut: only the head
            # is decoded, and whether the stream ended properly is unknown.
            readable_to_end = False
        data, whole = decode_body(raw, content_encoding, whole)
    kind = _sniff(data, content_type) if data is not None else "other"
    complete = True
    if data is not None and kind == "sse":
        parse_sse(data, acc, request_body)
        complete = acc.terminal or not readable_to_end
    elif data is not None and kind == "json":
        looks_whole = _parse_json(data, acc, whole, status >= 400)
        complete = looks_whole or not readable_to_end
    if status >= 400:
        complete = True  # an error answer is complete in what it says
    return acc.result(status, complete)
