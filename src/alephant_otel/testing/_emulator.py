"""A local stand-in for the Alephant gateway, over real HTTP on loopback.

OpenAI-compatible ``/v1/chat/completions``, ``/v1/completions`` (legacy),
``/v1/responses`` (and ``GET /v1/responses/{id}``; made with
``background``, a Response is queued, and done when fetched),
``/v1/embeddings``, ``/v1/images/generations`` (token-billed, as
``gpt-image-1``) and ``/v1/models``, and Anthropic-style ``/v1/messages``
and ``/v1/messages/count_tokens``, streaming (SSE) and not, in the shapes
the real ``openai`` and ``anthropic`` SDKs parse. It
records every request (method, path, query, headers, body) before answering,
and can be scripted to fail: rate limits with ``retry-after``, 5xx, policy
refusals, slow answers, resets mid-stream, truncated streams, broken or huge
bodies. Standard library only, so ``alephant_otel.testing`` adds no
dependency; it binds to 127.0.0.1 unless told otherwise.

Token usage is deterministic and depends on the input: input tokens are the
whitespace-separated words of every text in the request (at least 1); the
reply echoes the start of the last user message, and output tokens are its
words (see :meth:`GatewayEmulator.expected_usage`). A legacy completion's
``prompt`` counts as the user message. A chat or legacy completion asking
for ``n`` choices (at most 8) gets them: choice ``i`` says the reply
``4 * i + 1`` times, so in a stream the first choice finishes well before
the others, and output tokens count every choice's words.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from alephant_otel.testing import _toolcalls
from alephant_otel.testing._server import LoopbackServer, QuietHTTPHandler, QuietHTTPServer

__all__ = ["Fault", "GatewayEmulator", "RecordedRequest"]


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


class _Encoder:
    """Compress a body whole, or a stream event by event with a flush after each, as a CDN does."""

    CODINGS: Final = ("gzip", "br", "zstd")

    def __init__(self, coding: str) -> None:
        self.coding = coding
        if coding == "gzip":
            import zlib

            gz = zlib.compressobj(wbits=31)
            self._part: Callable[[bytes], bytes] = lambda data: gz.compress(data) + gz.flush(zlib.Z_SYNC_FLUSH)
            self._end: Callable[[], bytes] = gz.flush
        elif coding == "br":
            import brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]

            br = brotli.Compressor(quality=4)  # what CDNs use for dynamic content
            self._part = lambda data: bytes(br.process(data)) + bytes(br.flush())
            self._end = lambda: bytes(br.finish())
        elif coding == "zstd":
            try:
                from compression.zstd import ZstdCompressor  # type: ignore[import-not-found,unused-ignore]
            except ImportError:
                from backports.zstd import ZstdCompressor  # type: ignore[import-not-found,unused-ignore,no-redef]
            zs = ZstdCompressor()
            self._part = lambda data: bytes(zs.compress(data, ZstdCompressor.FLUSH_BLOCK))
            self._end = lambda: bytes(zs.flush(ZstdCompressor.FLUSH_FRAME))
        else:
            raise ValueError(f"content_encoding must be one of {', '.join(self.CODINGS)}, not {coding!r}")

    @classmethod
    def check(cls, coding: str | None) -> None:
        """Raise ``ValueError`` now if ``coding`` is unknown or its library is missing."""
        if coding is not None:
            try:
                cls(coding)
            except ImportError as exc:
                raise ValueError(f"content_encoding={coding!r} needs a library that is not installed: {exc}") from exc

    def part(self, data: bytes) -> bytes:
        """``data`` compressed and flushed, so the client can decode it at once."""
        return self._part(data)

    def end(self) -> bytes:
        """The end of the compressed stream."""
        return self._end()

    def whole(self, data: bytes) -> bytes:
        """``data`` as one compressed body."""
        return self._part(data) + self._end()


class GatewayEmulator(LoopbackServer):
    """The gateway emulator; a context manager that serves in a daemon thread.

    ``url`` is its base URL (``http://127.0.0.1:PORT``), also the Anthropic
    ``base_url``; the OpenAI ``base_url`` is :attr:`openai_base_url`.

    ``content_encoding`` (``gzip``, ``br`` or ``zstd``) compresses every
    answer whose request accepts that coding, streams event by event, as a
    CDN in front of a gateway does (``br`` needs ``brotli``; ``zstd`` needs
    Python 3.14 or ``backports.zstd``).

    ``tool_calls=True`` plays tool calls for chat completions and Responses
    that offer function tools: each offered tool is called once, one per turn,
    then the model answers with text (see :mod:`alephant_otel.testing._toolcalls`),
    so agent frameworks run their real tool loop against the emulator.

    Examples:
        >>> import httpx
        >>> from alephant_otel.testing import GatewayEmulator
        >>> with GatewayEmulator() as gw:
        ...     r = httpx.post(gw.url + "/v1/embeddings", json={"model": "m", "input": "two words"})
        ...     r.json()["usage"]["prompt_tokens"], gw.requests[0].path
        (2, '/v1/embeddings')
    """

    _thread_name = "gateway-emulator"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        report_cost: bool = False,
        cost_header: str = "x-litellm-response-cost",
        content_encoding: str | None = None,
        tool_calls: bool = False,
    ) -> None:
        _Encoder.check(content_encoding)
        self.tool_calls = tool_calls
        self.content_encoding = content_encoding
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.report_cost = report_cost
        self.cost_header = cost_header
        # Response ids are unique across emulators, as the real API's are: a process
        # remembers which responses it counted, and two emulators' "resp_1" would collide.
        self._ids = secrets.token_hex(4)
        self._state = _State()
        server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        server.emulator = self
        super().__init__(server)

    @property
    def openai_base_url(self) -> str:
        """``url + "/v1"``, for ``openai.OpenAI(base_url=...)`` (as the pytest fixture has it)."""
        return self.url + "/v1"

    # -- records and scripts ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a snapshot)."""
        with self._state.lock:
            return list(self._state.requests)

    def clear(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.faults.clear()

    def add_fault(self, fault: Fault, *, times: int = 1, path: str | None = None) -> None:
        """Apply ``fault`` to the next ``times`` requests (only those to ``path``, when given)."""
        with self._state.lock:
            self._state.faults.append(_Script(fault, times, path))

    @staticmethod
    def expected_usage(request: Mapping[str, Any]) -> tuple[int, int]:
        """(input tokens, output tokens) the emulator reports for this request body."""
        return _usage(dict(request))

    @staticmethod
    def cost_for(input_tokens: int, output_tokens: int) -> float:
        """The cost reported with ``report_cost=True``: $1/M input, $2/M output tokens."""
        return round(input_tokens * 1e-6 + output_tokens * 2e-6, 12)

    def _record(self, req: RecordedRequest) -> tuple[Fault | None, int]:
        with self._state.lock:
            self._state.requests.append(req)
            self._state.counter += 1
            n = self._state.counter
            for script in self._state.faults:
                if script.times > 0 and (script.path is None or script.path == req.path):
                    script.times -= 1
                    fault = script.fault
                    self._state.faults = [s for s in self._state.faults if s.times > 0]
                    return fault, n
            return None, n


def _reply_text(req: dict[str, Any]) -> str:
    words = _last_user_text(req).split()[:8] or ["your", "request"]
    return "Thanks for asking about " + " ".join(words) + ". Here is what I found for you."


def _choices(req: dict[str, Any]) -> list[str]:
    """The reply of each chat choice asked for (``n``, 1 to 8)."""
    reply = _reply_text(req)
    return [" ".join([reply] * (4 * i + 1)) for i in range(_asked_for(req))]


def _asked_for(req: dict[str, Any]) -> int:
    """How many choices or images the request asks for (``n``, 1 to 8)."""
    n = req.get("n")
    return min(max(n, 1), 8) if type(n) is int else 1


def _usage(req: dict[str, Any]) -> tuple[int, int]:
    text = " ".join(_texts(req.get("messages"))) + " " + " ".join(_texts(req.get("input")))
    text += " " + " ".join(_texts(req.get("system"))) + " " + " ".join(_texts(req.get("prompt")))
    inp = max(1, len(text.split()))
    return inp, sum(len(reply.split()) for reply in _choices(req))


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _interleaved(replies: list[str], word: Callable[[int, str], bytes], stop: Callable[[int], bytes]) -> list[bytes]:
    """Stream events for several choices taking turns, a word each, as OpenAI interleaves them.

    Each choice ends (``stop(i)``) right after its last word, so a short one
    finishes long before the stream does.
    """
    words = [reply.split() for reply in replies]
    events: list[bytes] = []
    for step in range(max(len(w) for w in words)):
        for i, choice in enumerate(words):
            if step < len(choice):
                events.append(word(i, choice[step] + " "))
            if step == len(choice) - 1:
                events.append(stop(i))
    return events


class _Server(QuietHTTPServer):
    request_queue_size = 1024
    emulator: GatewayEmulator


class _Server6(_Server):
    """The emulator on an IPv6 address (``host="::1"``)."""

    address_family = socket.AF_INET6


class _Handler(QuietHTTPHandler):
    server: _Server

    _encoder: _Encoder | None = None

    # -- plumbing -------------------------------------------------------------------------

    def _json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(obj).encode(), "application/json", extra)

    def send_body(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        """Answer with a complete body, compressed when the emulator and the request agree on a coding."""
        if self._encoder is not None and body:
            body = self._encoder.whole(body)
            extra = {**(extra or {}), "content-encoding": self._encoder.coding}
        super().send_body(status, body, ctype, extra)

    def _start_stream(self, extra: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        if self._encoder is not None:
            self.send_header("content-encoding", self._encoder.coding)
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self._write_chunk(self._encoder.part(data) if self._encoder is not None else data)

    def _write_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body, flushed; an empty one ends the body."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        if self._encoder is not None:
            tail = self._encoder.end()
            if tail:
                self._write_chunk(tail)
        self._write_chunk(b"")

    def _stream(self, events: list[bytes], fault: Fault | None, extra: dict[str, str]) -> None:
        emu = self.server.emulator
        self._start_stream(extra)
        cut = ("reset", "truncated", "stream_error")
        limit = fault.after_chunks if fault is not None and fault.kind in cut else None
        for i, event in enumerate(events):
            if limit is not None and i >= limit:
                if fault is not None and fault.kind == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "stream_error":
                    self._chunk(self._error_event(fault))
                break
            self._chunk(event)
            if emu.chunk_delay:
                time.sleep(emu.chunk_delay)
        self._end_stream()

    def _error_event(self, fault: Fault) -> bytes:
        """A mid-stream error event in the format of the API this request called."""
        path = urlsplit(self.path).path
        payload: dict[str, Any]
        if path.endswith("/messages"):
            payload = {"type": "error", "error": {"type": fault.code, "message": fault.reason}}
        elif path.endswith("/responses"):
            payload = {"type": "error", "code": fault.code, "message": fault.reason, "param": None}
        else:  # OpenAI chat: a data-only chunk
            payload = {"error": {"message": fault.reason, "type": fault.code, "param": None, "code": None}}
        data = b"data: " + json.dumps(payload).encode() + b"\n\n"
        return b"event: error\n" + data if "type" in payload else data

    # -- routing ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _read_body(self) -> bytes:
        """The request body, sized by ``content-length`` or sent ``chunked`` (a generator body)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer fields, if any, up to the blank line that ends the message.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        emu = self.server.emulator
        parts = urlsplit(self.path)
        body = self._read_body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        fault, n = emu._record(
            RecordedRequest(
                method, parts.path, parse_qs(parts.query), _Headers(list(self.headers.items())), body, parsed
            )
        )
        if emu.latency:
            time.sleep(emu.latency)
        self._encoder = None
        if emu.content_encoding is not None:
            accepted = {c.split(";")[0].strip().lower() for c in self.headers.get("accept-encoding", "").split(",")}
            if emu.content_encoding in accepted:
                self._encoder = _Encoder(emu.content_encoding)
        if fault is not None and self._apply_fault(fault, parts.path):
            return
        req = parsed if isinstance(parsed, dict) else {}
        path = parts.path
        if method == "GET" and path.rstrip("/").endswith("/v1/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": "openai/gpt-4o-mini", "object": "model", "created": 0, "owned_by": "alephant"}],
                },
            )
        elif method == "GET" and (fetched := path.rstrip("/").rpartition("/"))[0].endswith("/v1/responses"):
            with emu._state.lock:
                stored = emu._state.responses.get(fetched[2])
            if stored is None:
                self._json(404, {"error": {"message": "no such response", "type": "invalid_request_error"}})
            else:
                self._json(200, stored)
        elif method == "POST" and path.endswith("/v1/chat/completions"):
            self._chat(req, n, fault)
        elif method == "POST" and path.endswith("/v1/completions"):
            self._completions(req, n, fault)
        elif method == "POST" and path.endswith("/v1/responses"):
            self._responses(req, n, fault)
        elif method == "POST" and path.endswith("/v1/embeddings"):
            self._embeddings(req, n)
        elif method == "POST" and path.endswith("/v1/messages"):
            self._messages(req, n, fault)
        elif method == "POST" and path.endswith("/v1/images/generations"):
            self._images(req)
        elif method == "POST" and path.endswith("/v1/messages/count_tokens"):
            # Counting is free and reports no usage object: what it returns is not spent.
            self._json(200, {"input_tokens": _usage(req)[0]})
        else:
            self._json(404, {"error": {"message": f"no route for {method} {path}", "type": "not_found"}})

    def _apply_fault(self, fault: Fault, path: str) -> bool:
        """Answer with the fault; False when the fault shapes a normal answer instead."""
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
            return False
        if fault.kind == "status":
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            extra.update(fault.headers)
            status_body = fault.body or {
                "error": {
                    "message": f"emulated HTTP {fault.http_status}",
                    "type": "rate_limit_error" if fault.http_status == 429 else "server_error",
                }
            }
            self._json(fault.http_status, status_body, extra)
            return True
        if fault.kind == "policy":
            if path.endswith("/v1/messages"):
                body: dict[str, Any] = {"type": "error", "error": {"type": "permission_error", "message": fault.reason}}
            else:
                body = {
                    "error": {"message": fault.reason, "type": "policy_violation", "code": fault.code, "param": None}
                }
            self._json(fault.http_status, body, {"x-alephant-policy": fault.code})
            return True
        if fault.kind == "invalid_json":
            self.send_body(200, b'{"id": "chatcmpl-broken", "choices": [ {"mess', "application/json")
            return True
        if fault.kind == "big_body":
            pad = "x" * (fault.megabytes << 20)
            self._json(
                200,
                {
                    "id": "chatcmpl-big",
                    "object": "chat.completion",
                    "model": "big",
                    "created": 0,
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": pad}}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )
            return True
        if fault.kind == "redirect":
            self.send_body(fault.http_status, b"", "text/plain", {"location": fault.location})
            return True
        if fault.kind == "content_type":
            self.send_body(200, b"<html><body>maintenance</body></html>", fault.ctype)
            return True
        return False  # reset / truncated: applied while streaming

    def _cost_headers(self, inp: int, out: int) -> dict[str, str]:
        emu = self.server.emulator
        return {emu.cost_header: repr(emu.cost_for(inp, out))} if emu.report_cost else {}

    # -- endpoints ------------------------------------------------------------------------------

    def _tool_call(self, req: dict[str, Any], n: int) -> _toolcalls.ToolCall | None:
        if not self.server.emulator.tool_calls:
            return None
        return _toolcalls.next_tool_call(req, f"call_emu{self.server.emulator._ids}{n:06d}", _last_user_text(req))

    def _chat(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        model = str(req.get("model") or "openai/gpt-4o-mini")
        inp, out = _usage(req)
        call = self._tool_call(req, n)
        if call is not None:
            out = call.output_tokens
        replies = _choices(req)
        rid = f"chatcmpl-emu{n:06d}"
        usage = {
            "prompt_tokens": inp,
            "completion_tokens": out,
            "total_tokens": inp + out,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        extra = self._cost_headers(inp, out)
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        if call is not None:
            if not req.get("stream"):
                self._json(200, _toolcalls.chat_body(call, rid, model, int(time.time()), usage), extra)
                return
            events = _toolcalls.chat_chunks(call, rid, model, include_usage)
            last = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": []}
            self._openai_stream(events, {**last, "usage": usage} if include_usage else None, fault, extra)
            return
        if not req.get("stream"):
            self._json(
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": i,
                            "finish_reason": "stop",
                            "logprobs": None,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                        }
                        for i, text in enumerate(replies)
                    ],
                    "usage": usage,
                },
                extra,
            )
            return

        def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
            obj = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
            if include_usage:
                obj["usage"] = None
            return _sse(obj)

        events = [chunk({"role": "assistant", "content": ""}, index=i) for i in range(len(replies))]
        events += _interleaved(
            replies, lambda i, word: chunk({"content": word}, index=i), lambda i: chunk({}, "stop", index=i)
        )
        last = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": []}
        self._openai_stream(events, {**last, "usage": usage} if include_usage else None, fault, extra)

    def _completions(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        """The legacy text completions API (``client.completions.create``)."""
        model = str(req.get("model") or "openai/gpt-3.5-turbo-instruct")
        inp, out = _usage(req)
        replies = _choices(req)
        rid = f"cmpl-emu{n:06d}"
        usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}
        extra = self._cost_headers(inp, out)

        def body(choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
            return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
                    "choices": choices, **more}  # fmt: skip

        def choice(i: int, text: str, finish: str | None) -> dict[str, Any]:
            return {"index": i, "text": text, "logprobs": None, "finish_reason": finish}

        if not req.get("stream"):
            self._json(200, body([choice(i, text, "stop") for i, text in enumerate(replies)], usage=usage), extra)
            return
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        nothing: dict[str, Any] = {"usage": None} if include_usage else {}
        events = _interleaved(
            replies,
            lambda i, word: _sse(body([choice(i, word, None)], **nothing)),
            lambda i: _sse(body([choice(i, "", "stop")], **nothing)),
        )
        self._openai_stream(events, body([], usage=usage) if include_usage else None, fault, extra)

    def _openai_stream(self, events: list[bytes], usage: Any, fault: Fault | None, extra: dict[str, str]) -> None:
        """Send an OpenAI-style stream: ``events``, the usage chunk when asked for, ``[DONE]``."""
        if usage is not None:
            events.append(_sse(usage))
        events.append(b"data: [DONE]\n\n")
        self._stream(events, fault, extra)

    def _responses(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        model = str(req.get("model") or "openai/gpt-4o-mini")
        inp, out = _usage(req)
        call = self._tool_call(req, n)
        if call is not None:
            out = call.output_tokens
        reply = _reply_text(req)
        rid = f"resp_emu{self.server.emulator._ids}{n:06d}"
        msg = {
            "id": f"msg_emu{n:06d}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": reply, "annotations": []}],
        }
        usage = {
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }

        def response(status: str, output: list[Any], use: Any) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "response",
                "created_at": int(time.time()),
                "model": model,
                "status": status,
                "output": output,
                "usage": use,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "error": None,
                "incomplete_details": None,
                "instructions": None,
                "metadata": {},
                "temperature": 1.0,
                "top_p": 1.0,
            }

        extra = self._cost_headers(inp, out)
        output = [msg] if call is None else [_toolcalls.response_item(call, n)]
        body = response("completed", output, usage)
        with self.server.emulator._state.lock:
            kept = self.server.emulator._state.responses
            kept[rid] = body
            if len(kept) > _KEEP_RESPONSES:
                del kept[next(iter(kept))]
        if not req.get("stream"):
            if req.get("background"):
                # Background mode: queued now, done when next fetched; usage only then.
                self._json(200, response("queued", [], None))
            else:
                self._json(200, body, extra)
            return

        def event(kind: str, seq: int, **data: Any) -> bytes:
            payload = json.dumps({"type": kind, "sequence_number": seq, **data})
            return f"event: {kind}\ndata: {payload}\n\n".encode()

        if call is not None:
            self._stream(_toolcalls.response_events(call, n, response, usage, event), fault, extra)
            return

        # The event order of the real API: the SDK's ``responses.stream()`` helper
        # refuses a text delta for an output item it was not told about.
        part = {"type": "output_text", "text": "", "annotations": []}
        item = {**msg, "status": "in_progress", "content": []}
        at = {"item_id": msg["id"], "output_index": 0, "content_index": 0}
        kinds: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": response("in_progress", [], None)}),
            ("response.in_progress", {"response": response("in_progress", [], None)}),
            ("response.output_item.added", {"output_index": 0, "item": item}),
            ("response.content_part.added", {**at, "part": part}),
        ]
        words = reply.split()
        for i, w in enumerate(words):
            delta = w + " " if i < len(words) - 1 else w
            kinds.append(("response.output_text.delta", {**at, "delta": delta, "logprobs": []}))
        kinds += [
            ("response.output_text.done", {**at, "text": reply, "logprobs": []}),
            ("response.content_part.done", {**at, "part": {**part, "text": reply}}),
            ("response.output_item.done", {"output_index": 0, "item": msg}),
        ]
        events = [event(kind, seq, **data) for seq, (kind, data) in enumerate(kinds)]
        events.append(event("response.completed", len(events), response=response("completed", [msg], usage)))
        self._stream(events, fault, extra)

    def _embeddings(self, req: dict[str, Any], n: int) -> None:
        inputs = req.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        inp = max(1, len(" ".join(_texts(inputs)).split()))
        data = [{"object": "embedding", "index": i, "embedding": [0.01 * (i + 1)] * 8} for i in range(len(items))]
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(req.get("model") or "text-embedding-3-small"),
                "usage": {"prompt_tokens": inp, "total_tokens": inp},
            },
            self._cost_headers(inp, 0),
        )

    def _images(self, req: dict[str, Any]) -> None:
        # gpt-image-1 bills tokens: 272 output tokens a low-quality 1024x1024 image.
        images = _asked_for(req)
        inp, out = _usage(req)[0], 272 * images
        usage = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
                 "input_tokens_details": {"text_tokens": inp, "image_tokens": 0}}  # fmt: skip
        data = [{"b64_json": "iVBORw0KGgo="} for _ in range(images)]
        self._json(200, {"created": int(time.time()), "data": data, "usage": usage}, self._cost_headers(inp, out))

    def _messages(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        model = str(req.get("model") or "anthropic/claude-3-5-haiku-latest")
        inp, out = _usage(req)
        reply = _reply_text(req)
        mid = f"msg_emu{n:06d}"
        usage = {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        extra = self._cost_headers(inp, out)
        if not req.get("stream"):
            self._json(
                200,
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": reply}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
                extra,
            )
            return

        def event(kind: str, **data: Any) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        events = [
            event(
                "message_start",
                message={
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            ),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ]
        events += [
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": w + " "}) for w in reply.split()
        ]
        events += [
            event("content_block_stop", index=0),
            event(
                "message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": out}
            ),
            event("message_stop"),
        ]
        self._stream(events, fault, extra)
