"""What the gateway emulator records and can be scripted with: requests, faults, scripted replies."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["Fault", "RecordedRequest"]


class _Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._map = {k.lower(): v for k, v in items}

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    json: Any = None


@dataclass(frozen=True)
class Fault:
    """A scripted failure for the next matching request(s); build with the class methods."""

    kind: str
    http_status: int = 200
    retry_after: float | None = None
    body: dict[str, Any] | None = None
    seconds: float = 0.0
    after_chunks: int = 3
    megabytes: int = 0
    ctype: str = ""
    reason: str = ""
    location: str = ""
    code: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer with this HTTP status (e.g. 429 with ``retry-after``, 500, 502, 503).

        ``body`` replaces the default error body (any JSON answer, a 200 included),
        ``headers`` are added to the answer (a cost header, say).
        """
        return cls(
            "status", http_status=code, retry_after=retry_after, body=body, headers=tuple((headers or {}).items())
        )

    @classmethod
    def policy(cls, reason: str = "content_filter", *, status: int = 403, code: str = "policy_violation") -> Fault:
        """A gateway policy refusal: an error body naming the policy/guardrail."""
        return cls("policy", http_status=status, reason=reason, code=code)

    @classmethod
    def timeout(cls, seconds: float) -> Fault:
        """Wait this long before answering (for client timeouts)."""
        return cls("timeout", seconds=seconds)

    @classmethod
    def reset_mid_stream(cls, after_chunks: int = 3) -> Fault:
        """Stream a few chunks, then drop the connection abruptly."""
        return cls("reset", after_chunks=after_chunks)

    @classmethod
    def truncated_stream(cls, after_chunks: int = 3) -> Fault:
        """End a stream cleanly but early: no final usage event, no ``[DONE]``."""
        return cls("truncated", after_chunks=after_chunks)

    @classmethod
    def stream_error(
        cls, after_chunks: int = 3, *, error_type: str = "overloaded_error", message: str = "Overloaded"
    ) -> Fault:
        """A 200 stream that sends a few chunks, then an error event in the API's own format, and ends.

        Anthropic ``event: error``, an OpenAI chat ``{"error": {...}}`` chunk,
        or a Responses ``error`` event, as providers send mid-stream failures.
        """
        return cls("stream_error", after_chunks=after_chunks, code=error_type, reason=message)

    @classmethod
    def invalid_json(cls) -> Fault:
        """A 200 ``application/json`` answer whose body is not JSON."""
        return cls("invalid_json")

    @classmethod
    def big_body(cls, megabytes: int) -> Fault:
        """A 200 answer with a valid JSON body of about this size."""
        return cls("big_body", megabytes=megabytes)

    @classmethod
    def content_type(cls, content_type: str) -> Fault:
        """A 200 answer with a non-JSON content type."""
        return cls("content_type", ctype=content_type)

    @classmethod
    def redirect(cls, location: str, *, status: int = 307) -> Fault:
        """Answer with a redirect to ``location`` (a gateway that moved, a download handed to storage)."""
        if not 300 <= status < 400:
            raise ValueError(f"a redirect status is 3xx, not {status}")
        return cls("redirect", http_status=status, location=location)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key in ("content", "text", "input", "system", "instructions"):
            if key in value:
                yield from _texts(value[key])


def _last_user_text(req: dict[str, Any]) -> str:
    messages = req.get("messages")
    if isinstance(messages, list):
        for msg in reversed(messages):
            if isinstance(msg, dict) and msg.get("role") == "user":
                return " ".join(_texts(msg.get("content")))
    return " ".join(_texts(req.get("input"))) or " ".join(_texts(req.get("prompt")))


@dataclass
class _Script:
    fault: Fault
    times: int
    path: str | None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[_Script] = field(default_factory=list)
    counter: int = 0
    #: Finished Responses by id, for GET /v1/responses/{id}; the newest _KEEP_RESPONSES.
    responses: dict[str, Any] = field(default_factory=dict)


_KEEP_RESPONSES: Final = 1024
