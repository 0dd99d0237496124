"""The read-only web server of ``alephant-otel ui``.

Built on the standard library's :class:`http.server.ThreadingHTTPServer`:
the view serves a handful of GET routes to one local user, so a framework
would add an install and an attack surface for nothing; a thread per
connection keeps a slow chart from blocking the page polls.

Routes: ``/`` (list), ``/sessions/{id}`` (waterfall), ``/charts/{name}.svg``,
``/api/version``, ``/api/list``, ``/api/sessions/{id}``, ``/static/{file}``.
Every answer carries a strict Content-Security-Policy (scripts, styles and
images from this origin only, no inline script) and ``no-store``. An
exception never reaches the browser: it is logged and answered with a plain
error page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from alephant_otel.analytics import (
    STATUSES,
    FileSource,
    JaegerSource,
    SessionIdError,
    SessionSet,
    SourceError,
    TempoSource,
    TraceFileMissing,
    open_source,
    read_sessions,
)
from alephant_otel.analytics._follow import TraceFollower
from alephant_otel.analytics._model import Session
from alephant_otel.analytics._summary import Selection, SummarySource
from alephant_otel.web import _pages
from alephant_otel.web._charts import BY_CHART, CHARTS, render_breakdown, render_chart
from alephant_otel.web._groups import SUMMARY_DIMENSIONS, choices
from alephant_otel.web._selection import SELECTIONS, Selected
from alephant_otel.web._view import ListQuery, TraceLinks, waterfall

__all__ = ["CSP", "SessionStore", "UiServer"]

_log = logging.getLogger(__name__)

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: A backend (Tempo, Jaeger, Phoenix) is asked again at most this often.
BACKEND_TTL_S: Final = 30.0
#: A summary source (ClickHouse: one row per session per ask) is asked again at most this often.
SUMMARY_TTL_S: Final = 2.0


class SessionStore:
    """The sessions of the source, kept current: followed for a trace file, cached for a backend.

    Args:
        spec: The ``--source`` value (None: the default trace file).
        active_window_s: Recent-activity window for ``active``.
    """

    def __init__(self, spec: str | None, *, active_window_s: float) -> None:
        self.spec = spec
        self.active_window_s = active_window_s
        src = open_source(spec)
        self.description = src.description
        self.links: TraceLinks | None = None
        if isinstance(src, TempoSource):
            self.links = TraceLinks("tempo", src.base)
        elif isinstance(src, JaegerSource):
            self.links = TraceLinks("jaeger", src.base)
        self.follower = (
            TraceFollower(src.path, active_window_s=active_window_s, missing_hint=src.missing_hint)
            if isinstance(src, FileSource)
            else None
        )
        #: A source that answers summaries itself: the list polls it, a session page asks it for the tree.
        self.summary = src if isinstance(src, SummarySource) else None
        self._lock = threading.Lock()
        self._cached: tuple[float, str, SessionSet] | None = None
        self._fetches = 0
        self._by_id: tuple[str, dict[str, Session]] | None = None
        self._summary_cached: tuple[float, SessionSet] | None = None

    @property
    def live(self) -> bool:
        """Whether pages should poll for changes (a trace file, a summary source)."""
        return self.follower is not None or self.summary is not None

    def read(self) -> tuple[str, SessionSet]:
        """The current version tag and sessions.

        The tag changes whenever the sessions do; caches of what was drawn from them are keyed
        by it (an object's id would not do: Python reuses it once the object is freed).

        Raises:
            SourceError: The source cannot be read.
        """
        if self.follower is not None:
            return self.follower.read()
        if self.summary is not None:
            return self._read_summary(self.summary)
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > BACKEND_TTL_S:
                self._fetches += 1
                self._cached = (
                    now,
                    f"b{self._fetches}",
                    read_sessions(self.spec, active_window_s=self.active_window_s),
                )
            _, version, result = self._cached
        return version, result

    def _read_summary(self, summary: SummarySource) -> tuple[str, SessionSet]:
        with self._lock:
            now = time.monotonic()
            if self._summary_cached is None or now - self._summary_cached[0] > SUMMARY_TTL_S:
                listing = summary.list_sessions(Selection(active_window_s=self.active_window_s))
                result = SessionSet(
                    listing.sessions, listing.source, 0, listing.corrupt, listing.outside, listing.corrupt_values
                )
                self._summary_cached = (now, result)
            result = self._summary_cached[1]
        # The tag changes when what the list shows does, not on every ask.
        shown = tuple(
            (s.session_id, s.status, s.request_count, s.cost_usd, s.last_activity_ns) for s in result.sessions
        )
        return f"c{hash(shown) & 0xFFFFFFFF:x}", result

    def find(self, version: str, result: SessionSet, session_id: str) -> Session:
        """The session with this id, or the only one it is a prefix of.

        Args:
            version: The tag :meth:`read` gave with ``result``.
            result: The sessions to look in.
            session_id: A whole id or a unique prefix.

        Raises:
            SessionIdError: No session matches, or the prefix matches several (the message lists them).
            SourceError: A summary source cannot be read.
        """
        if self.summary is not None:
            # The list holds summaries: the tree comes from the source (one session's spans).
            return self.summary.show(session_id, Selection(active_window_s=self.active_window_s))[0]
        with self._lock:
            if self._by_id is None or self._by_id[0] != version:
                self._by_id = (version, {s.session_id: s for s in result.sessions})
            index = self._by_id[1]
        found = index.get(session_id)
        if found is not None:
            return found
        # A run or request id (or prefix) opens the session holding it, as in `sessions show`.
        return result.resolve(session_id)


class _Answer(Exception):
    """Raised by a route to answer with an error page."""

    def __init__(self, status: HTTPStatus, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class UiServer(ThreadingHTTPServer):
    """The HTTP server: a :class:`ThreadingHTTPServer` that knows its store and defaults."""

    daemon_threads = True
    allow_reuse_address = True
    #: Connections the kernel holds while the accept loop starts a thread for the one before.
    #: socketserver's default, 5, refused about one request in ten at 200 concurrent clients;
    #: the kernel caps it (net.core.somaxconn) where it allows less.
    request_queue_size = 1024

    def __init__(
        self, address: tuple[str, int], store: SessionStore, defaults: ListQuery, *, check_host: bool = True
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.check_host = check_host
        self._selections: dict[tuple[str, str], Selected] = {}
        self._selections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def selection(self, version: str, result: SessionSet, query: ListQuery) -> Selected:
        """The sessions ``query`` selects, cached per version and filter/sort (pages and charts share it)."""
        # The breakdown shown is not a filter: every grouping of one selection shares it.
        key = (version, query.params(page="", size="", by=""))
        with self._selections_lock:
            found = self._selections.get(key)
        if found is None:
            chosen, problems = query.select(result.sessions)
            found = Selected(chosen, problems)
            with self._selections_lock:
                if len(self._selections) >= SELECTIONS:
                    self._selections.pop(next(iter(self._selections)))
                self._selections[key] = found
        return found

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log an error that escaped a handler; a client that went away is no error.

        ``socketserver`` prints a traceback to stderr for any exception; a browser closing its
        tab or a client resetting the connection mid-answer is routine for a server.
        """
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            _log.debug("alephant-otel ui: client %s went away: %r", client_address, exc)
            return
        _log.error("alephant-otel ui: error serving %s", client_address, exc_info=exc)

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request's Host header names this loopback server.

        A page of another site can resolve its own name to 127.0.0.1 (DNS rebinding) and then
        read same-origin from this server; its requests carry that name as Host, so only the
        loopback names are answered (unless the server was started for remote use).
        """
        if not self.check_host:
            return True
        if not host:
            return False
        bound, port = str(self.server_address[0]), self.server_address[1]
        names = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"{bound}:{port}", f"[{bound}]:{port}"}
        return host.lower() in names

    @property
    def url(self) -> str:
        """The base URL the server is reachable at."""
        host, port = self.server_address[:2]
        text = str(host)
        return f"http://[{text}]:{port}/" if ":" in text else f"http://{text}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = "alephant-otel-ui"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # --- plumbing -------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            **(extra or {}),
        }
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, status: HTTPStatus, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    def _json(self, doc: Any) -> None:
        self._send(HTTPStatus.OK, json.dumps(doc, separators=(",", ":")).encode(), "application/json")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        qs = parse_qs(parts.query, keep_blank_values=True)
        source = self.server.store.description
        try:
            if not self.server.host_allowed(self.headers.get("Host")):
                raise _Answer(
                    HTTPStatus.MISDIRECTED_REQUEST, "Unexpected host", "This server answers only its loopback address."
                )
            route = self._route(path)
            if route is None:
                raise _Answer(HTTPStatus.NOT_FOUND, "Not found", f"There is no page at {path}.")
            route(path, qs)
        except _Answer as a:
            self._html(a.status, _pages.error_page(a.title, a.message, source=source))
        except TraceFileMissing as exc:
            # Not an error to go back from: the file may be created any moment (an app starting).
            self._html(HTTPStatus.SERVICE_UNAVAILABLE, _pages.waiting_page(str(exc), source=source))
        except SourceError as exc:
            self._html(
                HTTPStatus.SERVICE_UNAVAILABLE,
                _pages.error_page("Cannot read the source", str(exc), source=source),
            )
        except ConnectionError:
            # The client went away (reset, broken pipe): nothing to answer, and its socket is dead.
            self.close_connection = True
        except Exception:
            _log.exception("alephant-otel ui: error answering %s", path)
            with contextlib.suppress(OSError):
                self._html(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    _pages.error_page(
                        "Something went wrong", "The server could not draw this page; its log says why.", source=source
                    ),
                )

    def _route(self, path: str) -> Callable[[str, dict[str, list[str]]], None] | None:
        if path == "/":
            return self._list
        if path == "/api/version":
            return self._version
        if path == "/api/list":
            return self._api_list
        if path.startswith("/sessions/"):
            return self._session
        if path.startswith("/api/sessions/"):
            return self._api_session
        if path.startswith("/charts/") and path.endswith(".svg"):
            return self._chart
        if path.startswith("/static/"):
            return self._static
        if path == "/favicon.ico":
            return self._no_content
        return None

    # --- routes ---------------------------------------------------------------------

    def _selection(self, qs: dict[str, list[str]]) -> tuple[str, SessionSet, ListQuery, Selected]:
        version, result = self.server.store.read()
        query = ListQuery.parse(qs, self.server.defaults)
        return version, result, query, self.server.selection(version, result, query)

    def _list(self, path: str, qs: dict[str, list[str]]) -> None:
        version, result, query, sel = self._selection(qs)
        store = self.server.store
        chosen, problems = sel.chosen, list(sel.problems)
        query.by = self._by(query, problems)
        if result.corrupt:
            problems.append(f"{result.corrupt} corrupt line(s) skipped in {result.source}")
        page = _pages.list_page(
            source=store.description,
            query=query,
            chosen=chosen,
            seen=len(result.sessions),
            problems=problems,
            vitals=sel.vitals,
            statuses=STATUSES,
            charts=tuple(CHARTS),
            version=version,
            live=store.live,
            by_choices=choices(chosen, query.by, summary=store.summary is not None),
            groups=sel.groups(query.by),
        )
        self._html(HTTPStatus.OK, page)

    def _by(self, query: ListQuery, problems: list[str] | None = None) -> str:
        """The breakdown to show: a summary source (one row per session) has no model or tool one."""
        if self.server.store.summary is None or query.by in SUMMARY_DIMENSIONS or query.by.startswith("metadata."):
            return query.by
        if problems is not None:
            problems.append(f"{self.server.store.description} answers per session: no breakdown by {query.by}")
        return "agent"

    def _version(self, path: str, qs: dict[str, list[str]]) -> None:
        version, _ = self.server.store.read()
        self._json({"version": version})

    def _api_list(self, path: str, qs: dict[str, list[str]]) -> None:
        version, result, query, sel = self._selection(qs)
        doc = _pages.list_json_rows(sel.chosen, query, len(result.sessions))
        query.by = self._by(query)
        doc["groups"] = _pages.group_links(query, sel.groups(query.by))
        doc["version"] = version
        self._json(doc)

    def _chart(self, path: str, qs: dict[str, list[str]]) -> None:
        name = path[len("/charts/") : -len(".svg")]
        if name not in CHARTS and name != BY_CHART:
            raise _Answer(HTTPStatus.NOT_FOUND, "Not found", f"There is no chart {name}.")
        _, _, query, sel = self._selection(qs)
        if name == BY_CHART:
            svg = render_breakdown(self._by(query), sel.chosen)
        else:
            svg = render_chart(name, sel.chosen, sel.vitals) or ""
        self._send(HTTPStatus.OK, svg.encode(), "image/svg+xml")

    def _lookup(self, session_id: str) -> tuple[str, SessionSet, Session]:
        store = self.server.store
        version, result = store.read()
        try:
            s = store.find(version, result, session_id)
        except SessionIdError as exc:
            raise _Answer(HTTPStatus.NOT_FOUND, "Unknown session", f"{str(exc).capitalize()}.") from None
        return version, result, s

    def _session(self, path: str, qs: dict[str, list[str]]) -> None:
        session_id = unquote(path[len("/sessions/") :])
        version, result, s = self._lookup(session_id)
        store = self.server.store
        doc = waterfall(s, source=result.source, links=store.links)
        live = f"{version} /api/sessions/{_pages._quote(s.session_id)}" if store.live else ""
        self._html(HTTPStatus.OK, _pages.session_page(doc, live=live))

    def _api_session(self, path: str, qs: dict[str, list[str]]) -> None:
        session_id = unquote(path[len("/api/sessions/") :])
        version, result, s = self._lookup(session_id)
        doc = waterfall(s, source=result.source, links=self.server.store.links)
        doc["version"] = version
        self._json(doc)

    def _no_content(self, path: str, qs: dict[str, list[str]]) -> None:
        self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")

    def _static(self, path: str, qs: dict[str, list[str]]) -> None:
        name = path[len("/static/") :]
        try:
            body = _pages.static_file(name)
        except KeyError:
            raise _Answer(HTTPStatus.NOT_FOUND, "Not found", f"There is no file {name}.") from None
        self._send(HTTPStatus.OK, body, _pages.STATIC[name], {"Cache-Control": "no-cache"})


def serve(server: UiServer, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C)."""
    if on_ready is not None:
        on_ready()
    try:
        server.serve_forever(poll_interval=0.25)
    finally:
        server.server_close()
