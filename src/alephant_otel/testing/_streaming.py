"""How the gateway emulator sends: whole bodies and server-sent event streams, compressed or not.

Streams are compressed event by event and flushed, as a CDN in front of the gateway sends them.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from alephant_otel.testing._emustate import Fault
from alephant_otel.testing._server import QuietHTTPHandler

if TYPE_CHECKING:
    from alephant_otel.testing._emulator import _Server

__all__ = []


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


class _Sender(QuietHTTPHandler):
    """Sending bodies and streams: the base of the emulator's request handler."""

    server: _Server
    _encoder: _Encoder | None = None

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
