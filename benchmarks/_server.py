"""A minimal, fast HTTP/1.1 keep-alive server for the benchmarks (loopback only).

It answers every POST with a fixed OpenAI chat completion, or, when the
request body asks for ``"stream": true``, with an SSE stream of N chunks
(``x-bench-chunks`` request header, default 500) in chunked transfer
encoding, one HTTP chunk per SSE event, yielding to the event loop after each
so that events leave as separate writes, as a real gateway's tokens do.

It is an ``asyncio.Protocol`` (no streams layer, no framework) so that the
server costs little next to the client it is measured against; it runs in its
own process so that the client's ``time.process_time`` counts only the client.

Run: ``python benchmarks/_server.py`` prints ``http://127.0.0.1:PORT`` on
stdout and serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench000000000000000000000001",
        "object": "chat.completion",
        "created": 1_750_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 21,
            "completion_tokens": 9,
            "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "system_fingerprint": "fp_bench",
    },
    separators=(",", ":"),
).encode()

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: application/json\r\n"
    b"x-request-id: req_bench\r\n"
    b"content-length: " + str(len(COMPLETION)).encode() + b"\r\n"
    b"\r\n" + COMPLETION
)

#: OTLP/HTTP export acknowledged (an empty ExportTraceServiceResponse), for the peers' ``*_otlp`` arms.
TRACES_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"

#: Header names of the last chat request, lowercased: ``GET /last-headers`` returns them as JSON,
#: so that the peer runner can tell which headers an arm put on the wire.
_last_headers: list[str] = []

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)


def _event(obj: object) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk(content: str | None, finish: str | None) -> dict[str, object]:
    delta: dict[str, object] = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-bench000000000000000000000002",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


TOKEN_EVENT = _event(_chunk(" token", None))
STOP_EVENT = _event(_chunk(None, "stop"))
USAGE_EVENT = _event(
    {
        "id": "chatcmpl-bench000000000000000000000002",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {"prompt_tokens": 21, "completion_tokens": 500, "total_tokens": 521},
    }
)
DONE_EVENT = b"%x\r\n%s\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n")
END = b"0\r\n\r\n"


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.streaming = False
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._serve()

    def _serve(self) -> None:
        while not self.streaming:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            chunks = 500
            lines = self.buf[:end].split(b"\r\n")
            target = lines[0].split(b" ")[1] if lines[0].count(b" ") >= 2 else b""
            names = []
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                names.append(name)
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-bench-chunks":
                    chunks = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            assert self.transport is not None
            if target == b"/v1/traces":
                self.transport.write(TRACES_OK)
                continue
            if target == b"/last-headers":
                reply = json.dumps(_last_headers).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(reply), reply)
                )
                continue
            _last_headers[:] = [name.decode("latin-1") for name in names]
            if b'"stream":true' in body or b'"stream": true' in body:
                self.streaming = True
                self.task = asyncio.ensure_future(self._stream(chunks))
            else:
                self.transport.write(RESPONSE)

    async def _stream(self, chunks: int) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(STREAM_HEAD + TOKEN_EVENT)
        for _ in range(chunks - 4):  # + first token, stop, usage, [DONE] = chunks events
            await asyncio.sleep(0)
            if transport.is_closing():
                return
            transport.write(TOKEN_EVENT)
        await asyncio.sleep(0)
        transport.write(STOP_EVENT + USAGE_EVENT + DONE_EVENT + END)
        self.streaming = False
        self._serve()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Conn, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    # Serve until the parent closes our stdin (or dies).
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(_main())
