"""GenAI response parsing: model, ids, token usage, finish reasons, policy refusals.

Called once per gateway response, when its body ends, with the bytes the
body watcher kept: the whole body, or for long streams its head and tail
joined by a blank line (so the middle of a stream is missing and the cut
may split an event). Formats: OpenAI chat completions, Responses and
embeddings, Anthropic messages; JSON and server-sent events; error bodies of
both. Nothing here raises: malformed input yields fewer fields.

``input_tokens`` follows the GenAI semantic conventions and genai-prices: it
includes cached input tokens (OpenAI's ``prompt_tokens`` already does;
Anthropic reports cache reads and writes separately, so they are added).
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, replace
from typing import Any, Final

__all__ = [
    "ParsedResponse",
    "PolicyHit",
    "operation_for_path",
    "parse_response",
    "provider_for",
    "request_model",
]

_MAX_JSON_BYTES: Final = 64 << 20
_OPERATIONS: Final = {
    "/chat/completions": "chat",
    "/responses": "chat",
    "/messages": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
}
_MODEL_RE: Final = re.compile(rb'"model"\s*:\s*"((?:[^"\\\x00-\x1f]|\\.){1,256})"')
_POLICY_RE: Final = re.compile(
    r"polic|guardrail|content[ _-]?filter|moderation|safety|refus|prohibited|blocked by", re.IGNORECASE
)
_POLICY_FINISH: Final = frozenset({"content_filter", "refusal"})
# SSE events worth decoding: everything else (content deltas) is skipped unread.
_INTERESTING: Final = re.compile(
    rb'"usage"\s*:\s*\{|"finish_reason"\s*:\s*"|"stop_reason"\s*:\s*"|"error"|response\.(?:completed|failed|incomplete|created)|message_start'
)


@dataclass(frozen=True, slots=True)
class PolicyHit:
    """A gateway or provider refusal on policy grounds."""

    reason: str
    code: str | None
    status: int


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """What a response body says about the call; ``None`` where it didn't say."""

    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    finish_reasons: tuple[str, ...] = ()
    policy: PolicyHit | None = None
    error_type: str | None = None
    #: False when a stream ended without its terminal event (truncated, reset).
    complete: bool = True


def operation_for_path(path: str) -> str | None:
    """The GenAI operation name for a gateway API path (``/v1/chat/completions`` -> ``chat``)."""
    i = path.rfind("/v1/")
    tail = path[i + 3 :] if i >= 0 else path
    return _OPERATIONS.get(tail.rstrip("/"))


def provider_for(model: str | None, path: str) -> str | None:
    """The provider: the prefix of a ``provider/model`` name, else inferred from the API path."""
    if model and "/" in model:
        prefix = model.split("/", 1)[0].strip().lower()
        if prefix:
            return prefix
    if path.endswith("/messages"):
        return "anthropic"
    return "openai" if operation_for_path(path) is not None else None


def request_model(body: bytes | None) -> str | None:
    """The ``model`` of a JSON request body, found without parsing the (possibly huge) body."""
    if not body:
        return None
    match = _MODEL_RE.search(body)
    if match is None:
        return None
    try:
        value = json.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return None
    return value if isinstance(value, str) and value else None


# --- small, total helpers --------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 1 << 53:
        return None
    return value


def _str(value: Any, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _usage_fields(usage: dict[str, Any]) -> dict[str, Any]:
    """Normalise the usage object of any supported format."""
    out: dict[str, Any] = {}
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI chat / embeddings
        out["input_tokens"] = _int(usage.get("prompt_tokens"))
        out["output_tokens"] = _int(usage.get("completion_tokens"))
        out["cache_read_input_tokens"] = _int(_dict(usage.get("prompt_tokens_details")).get("cached_tokens"))
        out["reasoning_output_tokens"] = _int(_dict(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    elif "input_tokens_details" in usage or "output_tokens_details" in usage:  # OpenAI Responses
        out["input_tokens"] = _int(usage.get("input_tokens"))
        out["output_tokens"] = _int(usage.get("output_tokens"))
        out["cache_read_input_tokens"] = _int(_dict(usage.get("input_tokens_details")).get("cached_tokens"))
        out["reasoning_output_tokens"] = _int(_dict(usage.get("output_tokens_details")).get("reasoning_tokens"))
    else:  # Anthropic: input_tokens excludes cache reads/writes
        base = _int(usage.get("input_tokens"))
        read = _int(usage.get("cache_read_input_tokens"))
        write = _int(usage.get("cache_creation_input_tokens"))
        if base is not None:
            out["input_tokens"] = base + (read or 0) + (write or 0)
        out["output_tokens"] = _int(usage.get("output_tokens"))
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = write
    return {k: v for k, v in out.items() if v is not None}


def _error_fields(obj: dict[str, Any]) -> dict[str, Any]:
    err = obj.get("error")
    if not isinstance(err, dict):
        return {}
    out: dict[str, Any] = {"error_type": _str(err.get("type")) or _str(err.get("code"))}
    message = " ".join(s for s in (_str(err.get("message"), 200), _str(err.get("type")), _str(err.get("code"))) if s)
    out["_message"] = _str(err.get("message"), 200) or out["error_type"] or "refused"
    out["_code"] = _str(err.get("code")) or _str(err.get("type"))
    out["_policy_text"] = message
    return out


def _from_object(obj: dict[str, Any], acc: dict[str, Any]) -> None:
    """Fold one JSON object (a whole body or one SSE event) into ``acc``."""
    kind = obj.get("type")
    if kind in ("response.completed", "response.failed", "response.incomplete", "response.created"):
        inner = _dict(obj.get("response"))
        if kind != "response.created":
            acc["_terminal"] = True
        _from_object(inner, acc)
        return
    if kind == "message_start":
        _from_object(_dict(obj.get("message")), acc)
        return
    if kind == "message_delta":
        # Anthropic's message_delta usage is cumulative: later values replace earlier ones.
        acc.update(_usage_fields(_dict(obj.get("usage"))))
        stop = _str(_dict(obj.get("delta")).get("stop_reason"))
        if stop:
            acc["finish_reasons"] = (stop,)
        return
    if kind == "message_stop":
        acc["_terminal"] = True
        return
    if obj.get("error") is not None:
        acc.update({k: v for k, v in _error_fields(obj).items() if v is not None})
        acc["_terminal"] = True
        return
    model = _str(obj.get("model"))
    if model and "response_model" not in acc:
        acc["response_model"] = model
    rid = _str(obj.get("id"))
    if rid and "response_id" not in acc:
        acc["response_id"] = rid
    usage = obj.get("usage")
    if isinstance(usage, dict):
        acc.update(_usage_fields(usage))
    reasons: list[str] = []
    choices = obj.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            reason = _str(_dict(choice).get("finish_reason"))
            if reason:
                reasons.append(reason)
    stop = _str(obj.get("stop_reason"))
    if stop:
        reasons.append(stop)
    if reasons:
        acc["finish_reasons"] = tuple(reasons)
    if obj.get("object") == "response":
        status = _str(obj.get("status"))
        if status in ("incomplete", "failed"):
            detail = _str(_dict(obj.get("incomplete_details")).get("reason"))
            if detail:
                acc["finish_reasons"] = (detail,)
    if kind == "message" or obj.get("object") in ("chat.completion", "response", "list"):
        acc["_terminal"] = True


def _decode(body: bytes, encoding: str | None) -> bytes | None:
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        return body
    if enc in ("gzip", "x-gzip"):
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if enc == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    if enc == "br":
        try:
            import brotli  # type: ignore[import-not-found]
        except ImportError:
            return None
        result: bytes = brotli.decompress(body)
        return result
    return None


def _parse_sse(body: bytes, acc: dict[str, Any]) -> None:
    first = True
    for raw in body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not raw.startswith(b"data:"):
            continue
        payload = raw[5:].strip()
        if payload == b"[DONE]":
            acc["_terminal"] = True
            continue
        if not first and _INTERESTING.search(payload) is None:
            continue
        try:
            obj = json.loads(payload)
        except ValueError:
            continue  # a cut or malformed event
        if isinstance(obj, dict):
            first = False
            _from_object(obj, acc)


def _policy(status: int, acc: dict[str, Any]) -> PolicyHit | None:
    text = acc.get("_policy_text") or ""
    if status in (403, 451) or (status >= 400 and _POLICY_RE.search(text)):
        return PolicyHit(reason=acc.get("_message") or f"HTTP {status}", code=acc.get("_code"), status=status)
    for reason in acc.get("finish_reasons", ()):
        if reason in _POLICY_FINISH:
            return PolicyHit(reason=reason, code=reason, status=status)
    if text and _POLICY_RE.search(text):  # an error event inside a 200 stream
        return PolicyHit(reason=acc.get("_message") or "refused", code=acc.get("_code"), status=status)
    return None


def parse_response(
    body: bytes,
    *,
    status_code: int,
    content_type: str | None,
    content_encoding: str | None = None,
    path: str = "",
    whole: bool = True,
) -> ParsedResponse:
    """Read what a gateway response body says. Never raises.

    Args:
        body: The body bytes as kept by the watcher (possibly head + tail).
        status_code: The HTTP status.
        content_type: The response ``content-type``.
        content_encoding: The response ``content-encoding``; only whole bodies are decoded.
        path: The request path (for format hints).
        whole: Whether ``body`` is the complete body.
    """
    try:
        return _parse(body, status_code, content_type, content_encoding, whole)
    except Exception:
        # Defensive: any shape not foreseen above reads as "nothing known".
        return ParsedResponse(
            policy=PolicyHit(f"HTTP {status_code}", None, status_code) if status_code in (403, 451) else None
        )


def _parse(
    body: bytes, status: int, content_type: str | None, content_encoding: str | None, whole: bool
) -> ParsedResponse:
    acc: dict[str, Any] = {}
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    decoded: bytes | None = body
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        decoded = _decode(body, content_encoding) if whole else None
    is_stream = ctype == "text/event-stream"
    is_json = ctype == "application/json" or ctype.endswith("+json")
    if decoded is not None:
        if is_stream:
            _parse_sse(decoded, acc)
        elif len(decoded) <= _MAX_JSON_BYTES and whole:
            try:
                obj = json.loads(decoded)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                _from_object(obj, acc)
    fields = {
        k: v
        for k, v in acc.items()
        if not k.startswith("_") and k in ParsedResponse.__dataclass_fields__ and k != "policy"
    }
    result = ParsedResponse(**fields)
    policy = _policy(status, acc)
    # A stream is complete when its terminal event arrived; a JSON body when it parsed.
    complete = bool(acc.get("_terminal")) if is_stream or (is_json and status < 400) else True
    if policy is not None or not complete:
        result = replace(result, policy=policy, complete=complete)
    return result
