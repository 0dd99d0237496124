"""chDB (embedded ClickHouse) served over ClickHouse's HTTP interface, on loopback, for the tests.

No ClickHouse server can be installed on the test machines, but its engine
can: ``chdb-core-lite``, installed by ``scripts/install-chdb.sh`` into its own
venv. This script runs under that venv's Python as a subprocess of the tests
and answers the part of ClickHouse's documented HTTP interface
(clickhouse.com/docs/interfaces/http) that a client uses, so that the real
client code (``clickhouse-connect``) runs against the real engine:

- ``GET``/``POST /`` with the query in ``query=`` and/or the body (joined
  with a newline, as the server does), ``database=``, ``default_format=``,
  bound parameters ``param_<name>=`` for ``{name:Type}`` placeholders; other
  settings are accepted and ignored;
- credentials in ``X-ClickHouse-User``/``X-ClickHouse-Key``, HTTP basic auth,
  or ``user=``/``password=``; a wrong one is HTTP 516 with the server's
  ``Code: 516. DB::Exception: ...`` body;
- an engine error is its ``Code: N. DB::Exception: ...`` text, with
  ``X-ClickHouse-Exception-Code``, HTTP 404 for an unknown table or
  database, 400 for a bad query, 500 otherwise;
- ``GET /ping`` answers ``Ok.``.

One engine session holds the database directory; queries run one at a time.

Usage: python chdb_server.py DB_DIR PORT_FILE [--user U --password P] [--log FILE]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_CODE = re.compile(r"Code: (\d+)\.")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_FOUND = {60, 81}  # UNKNOWN_TABLE, UNKNOWN_DATABASE
#: The settings a request may carry that are applied (integer ones; their defaults here); others are ignored.
_SETTINGS = {"enable_analyzer": 1}
_BAD_QUERY = {6, 26, 27, 36, 43, 46, 47, 53, 62, 70, 386, 456, 457}


class Engine:
    """One chDB session, used by one request at a time."""

    def __init__(self, path: str) -> None:
        # Imported here: the test suite's doctest collection imports this file without chDB.
        from chdb import session as chdb_session  # type: ignore[import-not-found]

        self.session = chdb_session.Session(path)
        self.lock = threading.Lock()

    def run(
        self, sql: str, fmt: str, database: str | None, params: dict[str, str], settings: dict[str, str] | None = None
    ) -> bytes:
        with self.lock:
            if database:
                self.session.query(f"USE {database}", "CSV")
            # A setting sent with a query applies to that query only, as on the server.
            for name, value in (settings or {}).items():
                self.session.query(f"SET {name} = {int(value)}", "CSV")
            try:
                res = self.session.query(sql, fmt, params=params or None)
            finally:
                for name in settings or {}:
                    self.session.query(f"SET {name} = {_SETTINGS[name]}", "CSV")
            return bytes(res.bytes()) if hasattr(res, "bytes") else str(res).encode()


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests read stderr
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, message: str) -> None:
        m = _CODE.search(message)
        code = int(m.group(1)) if m else 1000
        status = 404 if code in _NOT_FOUND else 400 if code in _BAD_QUERY else 500
        text = message.strip()
        if not text.startswith("Code:"):
            text = f"Code: {code}. DB::Exception: {text}"
        self._send(status, (text + "\n").encode(), {"X-ClickHouse-Exception-Code": str(code)})

    def _log(self, sql: str, params: dict[str, str], size: int, seconds: float = 0.0) -> None:
        if self.server.log is not None:
            entry = {"query": sql, "params": params, "bytes": size, "seconds": round(seconds, 4)}
            with self.server.log_lock, open(self.server.log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    def _credentials(self, qs: dict[str, list[str]]) -> tuple[str, str]:
        user = self.headers.get("X-ClickHouse-User")
        key = self.headers.get("X-ClickHouse-Key")
        auth = self.headers.get("Authorization", "")
        if user is None and auth.lower().startswith("basic "):
            try:
                user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user, key = "", ""
        if user is None:
            user = qs.get("user", ["default"])[0]
            key = qs.get("password", [""])[0]
        return user or "default", key or ""

    def _handle(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        qs = parse_qs(parts.query, keep_blank_values=True)
        if parts.path == "/ping":
            self._send(200, b"Ok.\n")
            return
        if parts.path not in ("/", ""):
            self._send(404, b"Code: 0. DB::Exception: There is no handle " + parts.path.encode() + b"\n")
            return
        user, key = self._credentials(qs)
        if (user, key) != (self.server.user, self.server.password):
            self._send(
                516,
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)\n".encode(),
                {"X-ClickHouse-Exception-Code": "516"},
            )
            return
        sql = "\n".join(x for x in (qs.get("query", [""])[0], body.decode("utf-8", "replace")) if x.strip())
        if not sql.strip():
            self._send(400, b"Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)\n")
            return
        database = qs.get("database", [""])[0] or None
        if database is not None and not _IDENT.match(database):
            self._error(f"Code: 81. DB::Exception: Database {database} does not exist. (UNKNOWN_DATABASE)")
            return
        params = {k[len("param_") :]: v[0] for k, v in qs.items() if k.startswith("param_")}
        fmt = qs.get("default_format", ["TabSeparated"])[0]
        settings = {k: v[0] for k, v in qs.items() if k in _SETTINGS and v[0].lstrip("-").isdigit()}
        started = time.perf_counter()
        try:
            out = self.server.engine.run(sql, fmt, database, params, settings)
        except Exception as exc:  # the engine's own error text, as the server sends it
            self._log(sql, params, 0)
            self._error(str(exc))
            return
        self._log(sql, params, len(out), time.perf_counter() - started)
        self._send(200, out, {"X-ClickHouse-Format": fmt, "X-ClickHouse-Server-Display-Name": "chdb-test"})

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length) if length else b"")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: Engine, user: str, password: str, log: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.log = log
        self.log_lock = threading.Lock()
        self.engine = engine
        self.user = user
        self.password = password


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("db_dir")
    ap.add_argument("port_file")
    ap.add_argument("--user", default="default")
    ap.add_argument("--password", default="")
    ap.add_argument("--log", help="append each query and its bound parameters to this file (JSON lines)")
    args = ap.parse_args()
    engine = Engine(args.db_dir)
    srv = Server(engine, args.user, args.password, args.log)
    with open(args.port_file + ".tmp", "w") as fh:
        fh.write(str(srv.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    with contextlib.suppress(KeyboardInterrupt):
        srv.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
