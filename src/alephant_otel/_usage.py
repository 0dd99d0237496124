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

Streams are not decoded event by event. The leading events (model and id)
are; then, in the stream's last 4 KB, the events whose raw bytes name a field
that matters (usage, a finish or stop reason, a terminal or error event);
before that tail, only events with a finish or stop reason (a choice of an
``n > 1`` stream that ended early, looked for unless the request body shows
a single choice was asked for), and the last usage object when the tail
has none. Errors and terminal events end a stream, so they are in its tail.
Content deltas are skipped by C-level searches, never decoded.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from alephant_otel._impossible import MAX_TOKENS as _MAX_TOKENS
from alephant_otel._impossible import warn_impossible
from alephant_otel._jsonfast import orjson_loads
from alephant_otel._semconv import well_known_provider

__all__ = [
    "ParsedResponse",
    "PolicyHit",
    "operation_for_path",
    "parse_body",
    "parse_response",
    "provider_for",
    "request_model",
]

_log = logging.getLogger(__name__)

#: Decompressed bodies are cut here: a small gzip body may expand enormously.
_MAX_DECODED: Final = 32 << 20
_DECODE_STEP: Final = 16 << 10
_REASON_LIMIT: Final = 200
#: Request bodies up to this size are parsed when the regex is ambiguous.
_PARSE_REQUEST_LIMIT: Final = 256 << 10
_STR_LIMIT: Final = 256

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
_ID_RE: Final = re.compile(rb'"id"\s*:\s*' + _JSON_STR)
_USAGE_RE: Final = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_RE: Final = re.compile(rb'"error"\s*:\s*(?=[{"])')
_REASON_RE: Final = re.compile(rb'"(?:finish_reason|stop_reason)"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')
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
_POLICY_RE: Final = re.compile(
    r"polic(?:y|ies)|guardrail|content[ _-]?(?:filter|management|safety)|moderat|safety|refus|prohibited"
    r"|blocked|flagged|jailbreak|responsible[ _-]?ai",
    re.IGNORECASE,
)
_POLICY_FINISH: Final = frozenset({"content_filter", "refusal"})
#: Statuses that mean quota, auth or server trouble whatever their message says.
_NOT_POLICY_STATUS: Final = frozenset({401, 402, 407, 408, 429})
_TERMINAL_TYPES: Final = frozenset(
    {"message_stop", "response.completed", "response.failed", "response.incomplete", "error"}
)
_SSE_FIELDS: Final = (b"event:", b"id:", b"retry:", b":")


def _json_loader() -> Callable[[bytes], Any]:
    # orjson (the ``[fast]`` extra) decodes a ~600-byte completion in ~1.2 µs
    # against ~4.6 µs for json; json stays the judge of what it rejects (big
    # integers, NaN, UTF-16 bodies), so parsing accepts the same inputs either way.
    fast = orjson_loads()
    if fast is None:
        return json.loads

    def loads(data: bytes) -> Any:
        try:
            return fast(data)
        except ValueError:
            return json.loads(data)

    return loads


_loads: Final = _json_loader()

#: Holds True once an internal parse error has been logged (one warning, not a flood).
_internal_error_logged: list[bool] = []


@dataclass(frozen=True, slots=True)
class PolicyHit:
    """A gateway or provider refusal on policy grounds.

    Attributes:
        reason: Short human-readable reason (an error message cut to ~200
            characters, or the finish reason).
        code: Machine-readable code when the response had one
            (``content_filter``, an error code or type), else ``None``.
        status: The HTTP status of the response.
    """

    reason: str
    code: str | None
    status: int


# Not frozen: a frozen dataclass sets each of these 11 fields through
# object.__setattr__, and one is built for every response.
@dataclass(slots=True)
class ParsedResponse:
    """What a response body says about the call; ``None`` where it did not say.

    Token counts are non-negative ints or ``None``. ``complete`` is ``False``
    when a stream ended without its terminal event or a JSON body was cut.
    """

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
    complete: bool = True


# --- request side: called for every request, so kept cheap ---------------------------


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


# --- small, total helpers ------------------------------------------------------------


def _json_str(raw: bytes) -> str | None:
    """Unescape the inside of a JSON string literal."""
    if raw.find(b"\\") < 0:  # not ``in``: for bytes, it first fails to read the needle as an int
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        try:
            value = json.loads(b'"' + raw + b'"')
        except ValueError:
            return None
        if not isinstance(value, str):
            return None
        text = value
    text = text.strip()
    return text[:_STR_LIMIT] if text else None


def _str(value: Any, limit: int = _STR_LIMIT) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] if value else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _Acc:
    """What has been read so far, folded event by event."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "err_code",
        "err_message",
        "err_type",
        "finish",
        "input",
        "input_excludes_cache",
        "model",
        "output",
        "reasoning",
        "refusal",
        "response_id",
        "terminal",
    )

    def __init__(self) -> None:
        self.model: str | None = None
        self.response_id: str | None = None
        self.input: int | None = None
        self.output: int | None = None
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.reasoning: int | None = None
        # Anthropic counts cache reads/writes beside input_tokens, not in it.
        self.input_excludes_cache = False
        self.finish: dict[int, str] = {}
        self.err_message: str | None = None
        self.err_code: str | None = None
        self.err_type: str | None = None
        #: (reason, code) of a model refusal that is not a finish reason.
        self.refusal: tuple[str, str] | None = None
        self.terminal = False

    # -- folding ----------------------------------------------------------------

    def usage(self, usage: dict[str, Any]) -> None:
        """Fold a usage object of any supported format; later values replace earlier ones."""
        get = usage.get
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            # OpenAI chat completions, legacy completions, embeddings.
            inp, out = get("prompt_tokens"), get("completion_tokens")
            prompt = get("prompt_tokens_details")
            read, write = (
                (prompt.get("cached_tokens"), prompt.get("cache_write_tokens"))
                if isinstance(prompt, dict)
                else (None, None)
            )
            done = get("completion_tokens_details")
            reasoning = done.get("reasoning_tokens") if isinstance(done, dict) else None
        else:
            inp, out = get("input_tokens"), get("output_tokens")
            done = _dict(get("output_tokens_details"))
            reasoning = done.get("reasoning_tokens", done.get("thinking_tokens"))
            if "input_tokens_details" in usage or "total_tokens" in usage:
                # OpenAI Responses: input_tokens already includes cached tokens.
                details = _dict(get("input_tokens_details"))
                read, write = details.get("cached_tokens"), details.get("cache_write_tokens")
            else:
                # Anthropic (message_delta usage is cumulative, so replacing is right).
                self.input_excludes_cache = True
                read, write = get("cache_read_input_tokens"), get("cache_creation_input_tokens")
        # A count is an int in range: not a bool, float or str. Spelled out rather than a loop
        # over (slot, value) pairs with setattr: this runs for every response. Anything else
        # but null is impossible, dropped with one warning (the elif costs nothing when valid).
        if type(inp) is int and 0 <= inp <= _MAX_TOKENS:
            self.input = inp
        elif inp is not None:
            warn_impossible("input token count", inp)
        if type(out) is int and 0 <= out <= _MAX_TOKENS:
            self.output = out
        elif out is not None:
            warn_impossible("output token count", out)
        if type(read) is int and 0 <= read <= _MAX_TOKENS:
            self.cache_read = read
        elif read is not None:
            warn_impossible("cached token count", read)
        if type(write) is int and 0 <= write <= _MAX_TOKENS:
            self.cache_write = write
        elif write is not None:
            warn_impossible("cache write token count", write)
        if type(reasoning) is int and 0 <= reasoning <= _MAX_TOKENS:
            self.reasoning = reasoning
        elif reasoning is not None:
            warn_impossible("reasoning token count", reasoning)

    def error(self, err: Any, *, message: Any = None, code: Any = None) -> None:
        if isinstance(err, dict):
            message, code, kind = err.get("message"), err.get("code"), err.get("type")
        else:
            message, kind = (err if isinstance(err, str) else message), None
        self.err_message = _str(message, 4 * _REASON_LIMIT) or self.err_message
        self.err_code = _str(code if isinstance(code, str) else None) or self.err_code
        self.err_type = _str(kind) or self.err_code or self.err_type

    def obj(self, obj: dict[str, Any]) -> None:
        """Fold one JSON object: a whole body or one SSE event."""
        kind = obj.get("type")
        if isinstance(kind, str):
            if kind.startswith("response."):
                if kind in _TERMINAL_TYPES:
                    self.terminal = True
                inner = obj.get("response")
                if isinstance(inner, dict):
                    self.obj(inner)
                    if kind == "response.failed":  # the stream's own failure, not a resource's state
                        err = inner.get("error")
                        self.error(err if isinstance(err, dict) and err else {"type": kind})
                return
            if kind == "message_start":
                self.obj(_dict(obj.get("message")))
                return
            if kind == "message_delta":
                self.usage(_dict(obj.get("usage")))
                delta = _dict(obj.get("delta"))
                self._stop(delta.get("stop_reason"), delta.get("stop_details"))
                return
            if kind == "message_stop":
                self.terminal = True
                return
            if kind == "error":  # Anthropic error body/event, Responses stream error event
                self.terminal = True
                self.error(obj.get("error"), message=obj.get("message"), code=obj.get("code"))
                return
        err = obj.get("error")
        if err is not None and err != {} and "object" not in obj:
            # The error envelope: an error body, or a mid-stream {"error": ...} chunk. In
            # a resource ("object": "fine_tuning.job", "video", "eval.run", "response")
            # "error" is the state of the thing, not of this call: a 200 retrieving a
            # failed job succeeded (issue 36).
            self.terminal = True
            self.error(err)
        # _str(obj.get(...)), inlined: every body and leading event passes here.
        if self.model is None:
            model = obj.get("model")
            if isinstance(model, str):
                self.model = model.strip()[:_STR_LIMIT] or None
        if self.response_id is None:
            rid = obj.get("id")
            if isinstance(rid, str):
                self.response_id = rid.strip()[:_STR_LIMIT] or None
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage(usage)
        choices = obj.get("choices")
        if isinstance(choices, list):
            self._choices(choices)
        if kind == "message":  # Anthropic message (JSON body or message_start)
            self._stop(obj.get("stop_reason"), obj.get("stop_details"))
        if obj.get("object") == "response":
            reason = _str(_dict(obj.get("incomplete_details")).get("reason"))
            if reason:
                self.finish[0] = reason
            self._responses_refusal(obj.get("output"))

    def _choices(self, choices: list[Any]) -> None:
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index")
            key = index if type(index) is int else position
            # _str and _dict, inlined (one call each per choice cost more than what they do).
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                reason = reason.strip()[:64]
                if reason:
                    self.finish[key] = reason
            message = choice.get("message")
            refusal = _str(message.get("refusal"), 4 * _REASON_LIMIT) if isinstance(message, dict) else None
            if refusal and self.refusal is None:
                self.refusal = (refusal, "refusal")

    def _stop(self, reason: Any, details: Any) -> None:
        stop = _str(reason, 64)
        if not stop:
            return
        self.finish[0] = stop
        if stop == "refusal" and isinstance(details, dict):
            explanation = _str(details.get("explanation"), 4 * _REASON_LIMIT)
            category = _str(details.get("category"), 64)
            text = explanation or (f"refusal: {category}" if category else None)
            if text:
                self.refusal = (text, "refusal")

    def _responses_refusal(self, output: Any) -> None:
        if not isinstance(output, list) or self.refusal is not None:
            return
        for item in output:
            content = _dict(item).get("content")
            if not isinstance(content, list):  # a number here made the whole body unreadable
                continue
            for part in content:
                part_d = _dict(part)
                if part_d.get("type") == "refusal":
                    self.refusal = (_str(part_d.get("refusal"), 4 * _REASON_LIMIT) or "refusal", "refusal")
                    return

    def salvage(self, chunk: bytes) -> None:
        """Read what a cut JSON text still says: its last usage object and finish reasons."""
        match = None
        for match in _USAGE_RE.finditer(chunk):  # noqa: B007 (want the last one)
            pass
        if match is not None:
            start = match.end() - 1
            text = chunk[start : start + 8192].decode("utf-8", "replace")
            try:
                usage, _ = json.JSONDecoder().raw_decode(text)
            except (ValueError, RecursionError):
                usage = None
            if isinstance(usage, dict):
                self.usage(usage)
        for reason in _REASON_RE.findall(chunk):
            if reason != b"null":
                self.finish.setdefault(0, reason.decode("ascii"))

    # -- result -------------------------------------------------------------------

    def result(self, status: int, complete: bool) -> ParsedResponse:
        inp = self.input
        if inp is not None and self.input_excludes_cache:
            inp += (self.cache_read or 0) + (self.cache_write or 0)
        finish = self.finish
        if not finish:
            reasons: tuple[str, ...] = ()
        elif len(finish) == 1:  # one choice: nothing to sort
            reasons = tuple(finish.values())
        else:
            reasons = tuple(finish[k] for k in sorted(finish))
        # Positional, in field order: keyword arguments cost several times as much to pass.
        return ParsedResponse(
            self.model,
            self.response_id,
            inp,
            self.output,
            self.cache_read,
            self.cache_write,
            self.reasoning,
            reasons,
            self.policy(status, reasons),
            self.err_type,
            complete,
        )

    def policy(self, status: int, reasons: tuple[str, ...]) -> PolicyHit | None:
        has_error = self.err_message is not None or self.err_type is not None or self.err_code is not None
        code = self.err_code or self.err_type
        if status in (403, 451):
            reason = _short(self.err_message) if self.err_message else f"HTTP {status}"
            return PolicyHit(reason=reason, code=code, status=status)
        if has_error and status < 500 and status not in _NOT_POLICY_STATUS:
            text = " ".join(s for s in (self.err_type, self.err_code, self.err_message) if s)
            if _POLICY_RE.search(text):
                return PolicyHit(reason=_short(self.err_message or text), code=code, status=status)
        for reason in reasons:
            if reason in _POLICY_FINISH:
                detail = self.refusal[0] if self.refusal is not None else reason
                return PolicyHit(reason=_short(detail), code=reason, status=status)
        if self.refusal is not None:
            return PolicyHit(reason=_short(self.refusal[0]), code=self.refusal[1], status=status)
        return None


# --- bodies ----------------------------------------------------------------------------


def _decode(body: bytes, encoding: str, whole: bool) -> tuple[bytes | None, bool]:
    """Undo ``content-encoding``. Returns (bytes or None, whether they are the whole body).

    The codings httpx and httpx2 decode: gzip and deflate always, ``br`` and
    ``zstd`` when the library they use is installed (which is also when they
    ask for them in ``accept-encoding``). A cut body cannot be decompressed
    past the cut, but its head can: that is where a stream's model and id are.
    """
    data = body
    codings = [c.strip() for c in encoding.lower().split(",") if c.strip() and c.strip() != "identity"]
    for i, coding in enumerate(reversed(codings)):
        if coding in ("gzip", "x-gzip", "deflate"):
            data, whole = _inflate(data, coding, whole)
        elif coding == "br":
            unbrotli = _brotli_decompressor()
            if unbrotli is None:
                return None, whole
            data, whole = _unbrotli(unbrotli, data, whole)
        elif coding == "zstd":
            unzstd = _zstd_decompressor()
            if unzstd is None:
                return None, whole
            data, whole = _unzstd(unzstd, data, whole)
        else:
            return None, whole
        if i + 1 < len(codings) and not whole:
            return None, False  # a cut inner layer cannot feed the outer one
    return data, whole


@functools.cache  # a failed import searches the path again every time
def _brotli_decompressor() -> Callable[[], Any] | None:
    """``brotli.Decompressor`` (or brotlicffi's), as httpx imports it; None when neither is installed."""
    try:
        import brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        try:
            import brotlicffi as brotli  # type: ignore[import-not-found,import-untyped,unused-ignore,no-redef]
        except ImportError:
            return None
    maker: Callable[[], Any] = brotli.Decompressor
    return maker


@functools.cache
def _zstd_decompressor() -> Callable[[], Any] | None:
    """A zstd decompressor factory with the ``compression.zstd`` interface, or None.

    ``compression.zstd`` (Python 3.14) or ``backports.zstd`` is what httpx2
    uses; ``zstandard`` is what httpx uses, adapted here.
    """
    try:
        from compression.zstd import ZstdDecompressor  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports.zstd import ZstdDecompressor  # type: ignore[import-not-found,unused-ignore,no-redef]
        except ImportError:
            try:
                import zstandard  # type: ignore[import-not-found,import-untyped,unused-ignore]
            except ImportError:
                return None
            return lambda: _Zstandard(zstandard)
    maker: Callable[[], Any] = ZstdDecompressor
    return maker


class _Zstandard:
    """``zstandard``'s decompressobj behind the ``compression.zstd`` interface.

    It has no output bound, so input is fed in small steps (see ``_unzstd``).
    """

    step = 1 << 10

    def __init__(self, zstandard: Any) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self.needs_input = True

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out: bytes = self._obj.decompress(data)
        return out

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._obj.unused_data)


def _unbrotli(make: Callable[[], Any], data: bytes, whole: bool) -> tuple[bytes, bool]:
    """Decode a brotli body, at most ``_MAX_DECODED`` bytes of it; a cut or broken one up to the cut."""
    decoder = make()
    out: list[bytes] = []
    size = 0
    try:
        for start in range(0, len(data), _DECODE_STEP):
            piece = _brotli_step(decoder, data[start : start + _DECODE_STEP], _MAX_DECODED - size)
            out.append(piece)
            size += len(piece)
            # With an output limit, what did not fit comes out of calls with no new input.
            while size < _MAX_DECODED and not _brotli_takes_more(decoder):
                piece = _brotli_step(decoder, b"", _MAX_DECODED - size)
                if not piece:
                    break
                out.append(piece)
                size += len(piece)
            if size >= _MAX_DECODED:
                return b"".join(out)[:_MAX_DECODED], False
        finished = bool(decoder.is_finished())
    except Exception:  # brotli.error is not a subclass of anything useful
        return b"".join(out), False
    return b"".join(out), whole and finished


def _brotli_step(decoder: Any, data: bytes, limit: int) -> bytes:
    try:
        out: bytes = decoder.process(data, output_buffer_limit=limit)
    except TypeError:  # brotli < 1.2, brotlicffi: no output limit
        out = decoder.process(data)
    return out


def _brotli_takes_more(decoder: Any) -> bool:
    check = getattr(decoder, "can_accept_more_data", None)
    return True if check is None else bool(check())


def _unzstd(make: Callable[[], Any], data: bytes, whole: bool) -> tuple[bytes, bool]:
    """Decode a zstd body (one frame or several), at most ``_MAX_DECODED`` bytes; a cut one up to the cut."""
    decoder = make()
    step = getattr(decoder, "step", _DECODE_STEP)
    out: list[bytes] = []
    size = 0
    pending = memoryview(data)
    ended = False  # a frame ended and no input followed it
    try:
        while pending:
            chunk, pending = bytes(pending[:step]), pending[step:]
            ended = False
            while True:
                piece = decoder.decompress(chunk, _MAX_DECODED - size)
                chunk = b""
                out.append(piece)
                size += len(piece)
                if size >= _MAX_DECODED:
                    return b"".join(out)[:_MAX_DECODED], False
                if decoder.eof:
                    # Another frame may follow: a stream compressed frame by frame.
                    rest = decoder.unused_data
                    pending = memoryview(rest + bytes(pending)) if rest else pending
                    decoder = make()
                    ended = True
                    break
                if decoder.needs_input or not piece:
                    break
    except Exception:  # ZstdError, zstandard.ZstdError
        return b"".join(out), False
    return b"".join(out), whole and ended


def _inflate(data: bytes, coding: str, whole: bool) -> tuple[bytes, bool]:
    if coding == "deflate" and data[:1] and (data[0] & 0x0F) != 8:
        wbits = -zlib.MAX_WBITS  # raw deflate, as some servers send it
    else:
        wbits = (16 + zlib.MAX_WBITS) if coding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    for start in range(0, len(data), _DECODE_STEP):
        try:
            piece = inflater.decompress(data[start : start + _DECODE_STEP], _MAX_DECODED - size)
        except zlib.error:
            return b"".join(out), False
        out.append(piece)
        size += len(piece)
        if inflater.unconsumed_tail or size >= _MAX_DECODED:
            return b"".join(out), False
        if inflater.eof:
            break
    return b"".join(out), whole and inflater.eof


@functools.lru_cache(maxsize=64)  # response content types repeat
def _content_kinds(content_type: str | None) -> tuple[bool, bool]:
    """(names an event stream, names JSON) of a response ``content-type``."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    return "event-stream" in ctype, "json" in ctype


def _sniff(body: bytes, content_type: str | None) -> str:
    kinds = _content_kinds(content_type)
    head = body[:64].lstrip()
    if head.startswith((b"data:", b"event:", b": ")) or kinds[0]:
        return "sse"
    if kinds[1] or head[:1] in (b"{", b"["):
        return "json"
    return "other"


def _parse_sse(body: bytes, acc: _Acc, request_body: bytes | None = None) -> None:
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


def _parse(
    body: bytes,
    status: int,
    content_type: str | None,
    content_encoding: str | None,
    whole: bool,
    request_body: bytes | None = None,
) -> ParsedResponse:
    status = int(status)
    acc = _Acc()
    raw = body if isinstance(body, bytes) else bytes(body or b"")
    data: bytes | None = raw
    readable_to_end = True
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        if not whole:
            # Compressed data cannot be read past the watcher's cut: only the head
            # is decoded, and whether the stream ended properly is unknown.
            readable_to_end = False
        data, whole = _decode(raw, content_encoding, whole)
    kind = _sniff(data, content_type) if data is not None else "other"
    complete = True
    if data is not None and kind == "sse":
        _parse_sse(data, acc, request_body)
        complete = acc.terminal or not readable_to_end
    elif data is not None and kind == "json":
        looks_whole = _parse_json(data, acc, whole, status >= 400)
        complete = looks_whole or not readable_to_end
    if status >= 400:
        complete = True  # an error answer is complete in what it says
    return acc.result(status, complete)
