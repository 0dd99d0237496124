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
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alephant_otel.testing._emustate import Fault, RecordedRequest, _Headers, _Script, _State
from alephant_otel.testing._routes import _Routes, _usage
from alephant_otel.testing._server import LoopbackServer, QuietHTTPServer
from alephant_otel.testing._streaming import _Encoder

__all__ = ["Fault", "GatewayEmulator", "RecordedRequest"]


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


class _Server(QuietHTTPServer):
    request_queue_size = 1024
    emulator: GatewayEmulator


class _Server6(_Server):
    """The emulator on an IPv6 address (``host="::1"``)."""

    address_family = socket.AF_INET6


class _Handler(_Routes):
    """Record each request, play a scripted fault if one is due, then answer by route."""

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
