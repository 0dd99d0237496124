"""What a gateway response said, folded from its JSON objects: model, ids, tokens, finish reasons, errors, refusals.

The accumulator the JSON and SSE readers (:mod:`._usage`, :mod:`._sse`) feed object by object, and the
result they return. Nothing here raises: a malformed value yields fewer fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from alephant_otel._impossible import MAX_TOKENS as _MAX_TOKENS
from alephant_otel._impossible import warn_impossible
from alephant_otel._jsonfast import orjson_loads

__all__ = ["ParsedResponse", "PolicyHit"]

_REASON_LIMIT: Final = 200


_STR_LIMIT: Final = 256


_USAGE_RE: Final = re.compile(rb'"usage"\s*:\s*\{')


_REASON_RE: Final = re.compile(rb'"(?:finish_reason|stop_reason)"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')


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


#: The first try of :data:`_loads`, for hot paths that fall back to a slower road on failure
#: anyway (and so reach ``json`` there): orjson when installed, else ``json.loads``.
_first_loads: Final[Callable[[bytes], Any]] = orjson_loads() or json.loads


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


def _json_str(raw: bytes) -> str | None:
    """Unescape the inside of a JSON string literal."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Looked for in the str: ``bytes.find`` parses its arguments as varargs, and ``in``
    # on bytes first fails to read the needle as an int.
    if "\\" in text:
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
        # A plain answer (no error, no refusal, no status a policy uses) says no policy:
        # judged here without the call, which nearly every response would make.
        plain = (
            status < 400
            and self.err_message is None
            and self.err_type is None
            and self.err_code is None
            and self.refusal is None
            and (not reasons or _POLICY_FINISH.isdisjoint(reasons))
        )
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
            None if plain else self.policy(status, reasons),
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
