"""What a request says before it is sent: its operation and provider (from the path and model), and its model."""

from __future__ import annotations

import functools
import re
from typing import Any, Final

from alephant_otel.record._acc import _first_loads, _json_str, _loads, _str
from alephant_otel.record._semconv import well_known_provider

__all__ = ["PARSE_WHOLE", "operation_for_path", "provider_for", "read_request", "request_model"]

#: Request bodies up to this size are parsed whole when the request is sent (see read_request).
PARSE_WHOLE: Final = 16 << 10
#: Request bodies up to this size are parsed when the regex is ambiguous.
_PARSE_REQUEST_LIMIT: Final = 256 << 10


_OPERATIONS: Final = {
    "/chat/completions": "chat",
    "/responses": "chat",
    "/messages": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
}


# A JSON string value of at most 256 characters, escapes allowed.
_JSON_STR: Final = rb'"((?:[^"\\\x00-\x1f]|\\.){1,256})"'


_MODEL_RE: Final = re.compile(rb'"model"\s*:\s*' + _JSON_STR)


#: The same, for a value without escapes: one character-class repeat, which the regex engine
#: runs in a tight loop (the alternation above costs ~1,000 instructions per character).
_MODEL_PLAIN_RE: Final = re.compile(rb'"model"\s*:\s*"([^"\\\x00-\x1f]{1,256})"')


def operation_for_path(path: str) -> str | None:
    """The GenAI operation name for a gateway API path.

    Any prefix before ``/v1`` is allowed (a gateway mounted under a sub path);
    a query string is ignored.

    Args:
        path: The request URL path.

    Returns:
        ``chat``, ``text_completion`` or ``embeddings``, or ``None`` for any
        other path.

    Examples:
        >>> operation_for_path("/v1/chat/completions")
        'chat'
        >>> operation_for_path("/gw/openai/v1/embeddings?x=1")
        'embeddings'
        >>> operation_for_path("/v1/models") is None
        True
    """
    try:
        return _operation_for_path(path)
    except Exception:  # not a str
        return None


# A client calls a few paths with a few models over and over, and working the operation or
# the provider out costs several times a cache hit.
@functools.lru_cache(maxsize=1024)
def _operation_for_path(path: str) -> str | None:
    query = path.find("?")
    if query >= 0:
        path = path[:query]
    i = path.rfind("/v1/")
    if i < 0:
        return None
    return _OPERATIONS.get(path[i + 3 :].rstrip("/"))


def provider_for(model: str | None, path: str) -> str | None:
    """The provider of a request.

    Args:
        model: The request model, possibly ``provider/model``.
        path: The request URL path.

    Returns:
        The ``provider`` prefix of the model name (lower case); else
        ``anthropic`` for ``/v1/messages`` and ``openai`` for the other
        OpenAI-style API paths; else ``None``.

    Examples:
        >>> provider_for("openai/gpt-4o", "/v1/chat/completions")
        'openai'
        >>> provider_for("claude-3-5-haiku-latest", "/v1/messages")
        'anthropic'
    """
    try:
        return _cached_provider_for(model, path)
    except TypeError:  # an unhashable argument: worked out, not remembered
        return _provider_for(model, path)


def _provider_for(model: str | None, path: str) -> str | None:
    try:
        if model:
            slash = model.find("/")
            if slash > 0:
                prefix = model[:slash].strip().lower()
                if prefix:
                    return well_known_provider(prefix)
        operation = operation_for_path(path)
        if operation is None:
            return None
        query = path.find("?")
        return "anthropic" if (path[:query] if query >= 0 else path).rstrip("/").endswith("/messages") else "openai"
    except Exception:
        return None


_cached_provider_for = functools.lru_cache(maxsize=1024)(_provider_for)


def read_request(body: bytes | None) -> tuple[str | None, dict[str, Any] | None]:
    """The model a request body names, and the body parsed when it is small. Never raises.

    A body of at most :data:`PARSE_WHOLE` bytes that is a JSON object is
    parsed: one parse gives the top-level ``model`` and, later, the request
    parameters, for less than the searches it replaces (a 100-byte chat body:
    ~10 k instructions with the parameters' key test, against ~15 k for
    :func:`request_model` and the parameter probe). A larger body (megabytes of prompt) is searched with
    :func:`request_model` and not parsed; so is one that does not parse.

    Returns:
        (the model or None, the parsed body or None).

    Examples:
        >>> read_request(b'{"model": "openai/gpt-4o-mini", "temperature": 0.2}')
        ('openai/gpt-4o-mini', {'model': 'openai/gpt-4o-mini', 'temperature': 0.2})
    """
    if type(body) is bytes and len(body) <= PARSE_WHOLE and body[:1] == b"{":
        try:
            doc = _first_loads(body)
        except (ValueError, RecursionError):  # not JSON (to orjson): searched below, as a large body is
            doc = None
        if type(doc) is dict:
            return _str(doc.get("model")), doc
    return request_model(body), None


def request_model(body: bytes | None) -> str | None:
    """The ``model`` of a JSON request body, found without parsing the body.

    Request bodies can be megabytes of prompt, so this is one compiled regex
    search, not ``json.loads``. A nested object may also have a ``"model"``
    key (a tool call's arguments); when the body has several, the last one
    wins, because the OpenAI and Anthropic SDKs write ``model`` after
    ``messages``.

    Args:
        body: The request body bytes, or ``None`` (streamed or absent body).

    Returns:
        The model name, or ``None`` if absent or not a string.

    Examples:
        >>> request_model(b'{"messages": [], "model": "openai/gpt-4o-mini"}')
        'openai/gpt-4o-mini'
    """
    try:
        if not body:
            return None
        # Usually one "model" key, last in the body: matched where it is, no regex scan.
        last = body.rfind(b'"model"')
        if last < 0:
            return None
        if body.find(b'"model"') == last:
            match = _MODEL_PLAIN_RE.match(body, last) or _MODEL_RE.match(body, last)
            return _json_str(bytes(match.group(1))) if match is not None else None
        match = _MODEL_RE.search(body)
        if match is None:
            return None
        later = _MODEL_RE.search(body, match.end())
        if later is None:
            return _json_str(bytes(match.group(1)))
        # Several "model" keys (one nested, e.g. in a tool call's input): a small
        # body is cheap to parse properly; for a big one, guess the last.
        if len(body) <= _PARSE_REQUEST_LIMIT:
            try:
                parsed = _loads(body)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                return _str(parsed.get("model"))
        while later is not None:
            match = later
            later = _MODEL_RE.search(body, match.end())
        return _json_str(bytes(match.group(1)))
    except Exception:
        return None
