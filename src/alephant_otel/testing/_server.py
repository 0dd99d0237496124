"""The lifecycle the loopback test servers share: serve in a daemon thread, stop cleanly."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

__all__ = ["LoopbackServer", "QuietHTTPHandler", "QuietHTTPServer"]

_S = TypeVar("_S", bound="LoopbackServer")


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading server whose handler threads die with the process, quiet about peers that hang up.

    Clients close keep-alive connections whenever they like (a timeout, a
    dropped stream, an SDK shutting down): the stock server prints a traceback
    for each, which drowns what a failing test says.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a peer that reset or closed the connection; report anything else."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class QuietHTTPHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, no Nagle delay, no access log: the base of the loopback handlers."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without TCP_NODELAY, Nagle plus the
    # client's delayed ACK adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what the server recorded, not its log."""

    def send_body(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        """Answer with a complete body of ``ctype`` (and ``extra`` headers)."""
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer:
    """A ``ThreadingHTTPServer`` run in a daemon thread; a context manager."""

    _thread_name = "loopback-server"
    #: How often the serving loop looks for a stop request. ``shutdown()`` waits for
    #: that look: with the standard library's 0.5 s, stopping a server cost 0.25 s on
    #: average, paid by every test that starts one (and two servers, a second).
    _poll_interval_s = 0.02

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (``http://[::1]:PORT`` on IPv6)."""
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self: _S) -> _S:
        """Start serving in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self._poll_interval_s},
                name=self._thread_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
