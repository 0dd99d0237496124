"""ClickHouse as a source: the sessions computed in the server, over the Collector's ``otel_traces``.

``--source clickhouse+http://host:8123/DATABASE`` (or ``clickhouse+https://``;
``?table=NAME`` for another table than ``otel_traces``, ``?timeout=SECONDS``
for another bound on each query than 30 s). The user and password come from
``CLICKHOUSE_USER``/``CLICKHOUSE_PASSWORD``, or from the URL
(``clickhouse+http://user:password@host:8123/db``); no message ever prints
the password.

This is a :class:`~._summary.SummarySource` (its summaries in ``_chsummary``):
``sessions list`` gets one row per listed session (filters, sort and limit
are bound parameters in the SQL of ``_chqueries``; a limited list picks the
ids first, then reads those sessions alone); ``vitals`` gets its percentiles
and groups (by agent, by model) from the server; ``show`` reads the spans of
one session's traces (found through the exporter's indexes) and rebuilds the
tree with the same builder as every other source. When the roll-up of
``collector-config/clickhouse/`` (table ``<table>_sessions``) exists, the
list reads it instead of the spans; without it, the source says so once.

It is a span source too (:meth:`ClickHouseSource.spans`), so that
``read_sessions`` works on it as on any other.

The client is the official ``clickhouse-connect`` driver, an extra:
``pip install 'alephant-otel[clickhouse]'``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from alephant_otel.analytics import _chqueries, _chsql, _chsummary
from alephant_otel.analytics._convert import record_from_flat
from alephant_otel.analytics._model import Session, SpanRecord
from alephant_otel.analytics._query import SessionIdError, SessionSet, resolve_session_id
from alephant_otel.analytics._reconstruct import SessionBuilder
from alephant_otel.analytics._spansource import Progress, SourceError, SourceSpecError, SpanQuery
from alephant_otel.analytics._summary import Listing, Selection
from alephant_otel.analytics._vitals import Vitals, VitalsConfig

__all__ = ["EXTRA_MISSING", "ClickHouseSource"]

EXTRA_MISSING: Final = "reading ClickHouse needs the clickhouse extra: pip install 'alephant-otel[clickhouse]'"
_DEFAULT_TABLE: Final = "otel_traces"
_DEFAULT_DATABASE: Final = "otel"
_TIMEOUT_S: Final = 30.0
_SERVER_ERROR = re.compile(r"(Code: \d+\. DB::Exception: .*?)(?: \(for url [^)]*\))?\s*$", re.DOTALL)
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_UNSUPPORTED = "json: unsupported value"


def _one_line(text: str) -> str:
    # The server's message can quote the whole query ("In scope SELECT ..."): the reason is before it.
    text = text.split("Stack trace", 1)[0].split(" In scope ", 1)[0]
    text = " ".join(text.split()).rstrip(" .:,")
    return text if len(text) <= 400 else text[:399] + "…"


class ClickHouseSource:
    """Sessions from ClickHouse tables the Collector's ``clickhouseexporter`` fills.

    Args:
        spec: ``clickhouse+http(s)://[user[:password]@]host[:port][/database][?table=&timeout=]``.

    Raises:
        SourceSpecError: The URL is not of that form.
        SourceError: ``clickhouse-connect`` is not installed.
    """

    def __init__(self, spec: str) -> None:
        _, _, rest = spec.partition("+")
        parts = urlsplit(rest)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceSpecError("bad source: expected clickhouse+http(s)://host:port/DATABASE")
        qs = parse_qs(parts.query)
        try:
            self.database = _chsql.check_identifier(parts.path.strip("/") or _DEFAULT_DATABASE, "database")
            self.table = _chsql.check_identifier((qs.get("table") or [_DEFAULT_TABLE])[0], "table")
            self.timeout = float((qs.get("timeout") or [str(_TIMEOUT_S)])[0])
            port = parts.port or (8443 if parts.scheme == "https" else 8123)
        except ValueError as exc:
            raise SourceSpecError(f"bad clickhouse source: {exc}") from None
        if not 0 < self.timeout < 86400:
            raise SourceSpecError("bad clickhouse source: timeout must be a positive number of seconds")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = port
        self.user = unquote(parts.username) if parts.username else os.environ.get("CLICKHOUSE_USER") or "default"
        self._password = (
            unquote(parts.password) if parts.password is not None else os.environ.get("CLICKHOUSE_PASSWORD", "")
        )
        base = f"{parts.scheme}://{self.host}:{port}/{self.database}"
        self.base = base
        self.description = f"clickhouse at {base} (table {self.table})"
        self.corrupt = 0
        self._client: Any = None
        self._settings: dict[str, Any] = {}
        self._rollup: bool | None = None
        self._fallback_said = False
        try:
            import clickhouse_connect  # noqa: F401  (checked now: the message names the extra)
        except ImportError:
            raise SourceError(EXTRA_MISSING) from None
        # The driver logs its failures before raising them; the raised error is what the user sees,
        # in one line (without this handler Python's last-resort one prints the log to stderr).
        driver_log = logging.getLogger("clickhouse_connect")
        if not driver_log.handlers:
            driver_log.addHandler(logging.NullHandler())

    def __repr__(self) -> str:
        return f"ClickHouseSource({self.description})"

    # --- the connection -------------------------------------------------------------

    def _fail(self, exc: BaseException) -> SourceError:
        """A one-line error without the password, from whatever the driver raised."""
        raw = str(exc)
        m = _SERVER_ERROR.search(raw)
        if m:
            detail = _one_line(m.group(1))
            code_m = _ERROR_CODE.search(detail)
            code = int(code_m.group(1)) if code_m else 0
            if code in (516, 192, 193, 194):
                detail += f" (user {self.user}: check CLICKHOUSE_USER / CLICKHOUSE_PASSWORD)"
            elif code in (60, 81):
                detail += (
                    f" (is {self.database}.{self.table} there? the Collector's clickhouse exporter creates it;"
                    " ?table= names another)"
                )
        else:
            lowered = raw.lower()
            if "timed out" in lowered or "timeout" in lowered:
                detail = f"no answer within {self.timeout:g} s (?timeout= sets another bound)"
            elif "refused" in lowered:
                detail = "connection refused"
            else:
                detail = _one_line(raw)[:300]
        if self._password:
            detail = detail.replace(self._password, "***")
        return SourceError(f"{self.description}: {detail}")

    def _connect(self) -> Any:
        if self._client is None:
            import clickhouse_connect

            try:
                self._client = clickhouse_connect.get_client(
                    host=self.host,
                    port=self.port,
                    username=self.user,
                    password=self._password,
                    database=self.database,
                    secure=self.secure,
                    connect_timeout=self.timeout,
                    send_receive_timeout=self.timeout,
                    # No server session: the web view asks from several threads at once.
                    autogenerate_session_id=False,
                    query_retries=0,
                )
            except Exception as exc:
                raise self._fail(exc) from None
            # These queries are wide (one expression per figure): ClickHouse's new query analyzer
            # took 1.4 s to plan the list over 17 spans, the old one 0.16 s (chDB 26.5). Where the
            # server still has the switch, the old one plans them; elsewhere the default does.
            if "enable_analyzer" in getattr(self._client, "server_settings", {}):
                self._settings = {"enable_analyzer": 0}
        return self._client

    def query(self, sql: str, params: Mapping[str, Any] | None = None, *, prune: bool = False) -> list[dict[str, Any]]:
        """Rows of one query (``{name:Type}`` placeholders bound from ``params``) as dicts.

        ``prune``: plan it with the new analyzer, which computes only the columns the answer
        needs (``_chqueries.pick_sql``); the old one, faster to plan wide queries, computes all.

        Raises:
            SourceError: The server cannot be reached, refused the credentials or failed the query.
        """
        client = self._connect()
        try:
            settings = {**self._settings, "enable_analyzer": 1} if prune and self._settings else self._settings
            result = client.query(sql, parameters=dict(params or {}), settings=settings)
        except Exception as exc:
            raise self._fail(exc) from None
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def has_rollup(self) -> bool:
        """Whether the roll-up table exists (asked once)."""
        if self._rollup is None:
            rows = self.query(
                "SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                {"db": self.database, "t": self.table + _chsql.ROLLUP_SUFFIX},
            )
            self._rollup = bool(rows and rows[0]["n"])
        return self._rollup

    def notes(self, rollup: bool) -> list[str]:
        """The one-time remark that the list reads the spans (no roll-up), once per source."""
        if rollup or self._fallback_said:
            return []
        self._fallback_said = True
        return [
            f"no roll-up table {self.table}{_chsql.ROLLUP_SUFFIX} in {self.database}: reading the spans of "
            f"{self.table} (slower; collector-config/clickhouse/ has the SQL that adds it)"
        ]

    # --- summaries (``_chsummary``) -----------------------------------------------------

    def list_sessions(self, selection: Selection) -> Listing:
        """The selected sessions, one row each from the server (from the roll-up when there is one)."""
        return _chsummary.listing(self, selection)[0]

    def vitals(self, selection: Selection, config: VitalsConfig) -> tuple[Vitals, Listing]:
        """Vitals from the server (see ``_chsummary.vitals``)."""
        return _chsummary.vitals(self, selection, config)

    # --- one session's spans ---------------------------------------------------------

    def _records(self, rows: Sequence[dict[str, Any]]) -> Iterator[SpanRecord]:
        for r in rows:
            attrs = {k: _value(v) for k, v in r["SpanAttributes"].items()}
            events = [
                (str(name), {k: _value(v) for k, v in ev.items()})
                for name, ev in zip(r["Events.Name"], r["Events.Attributes"], strict=False)
            ]
            start = int(r["start_ns"])
            yield record_from_flat(
                trace_id=r["TraceId"],
                span_id=r["SpanId"],
                parent_span_id=r["ParentSpanId"] or None,
                name=r["SpanName"],
                start_ns=start,
                end_ns=start + int(r["dur"]),
                error=r["StatusCode"] in ("Error", "STATUS_CODE_ERROR"),
                status_message=r["StatusMessage"] or "",
                attributes=attrs,
                events=events,
                service=r["ServiceName"] or None,
            )

    def _build(self, sid: str, sel: Selection) -> tuple[Session | None, SessionSet]:
        rows = self.query(_chqueries.show_spans_sql(self.table), {"sid": sid})
        builder = SessionBuilder()
        builder.add_all(self._records(rows))
        sessions = builder.build(now_ns=sel.now_ns, active_window_s=sel.active_window_s)
        result = SessionSet(sessions, self.description, builder.spans, self.corrupt, [], builder.corrupt_values)
        return result.get(sid), result

    def show(self, session_id: str, selection: Selection) -> tuple[Session, SessionSet]:
        """The full tree of one session (an id or a unique prefix), from the spans of its traces."""
        wanted = session_id.strip()
        if wanted:
            found, result = self._build(wanted, selection)
            if found is not None:
                return found, result
        rollup = self.has_rollup()
        rows = self.query(_chqueries.prefix_sql(self.table, rollup), {"p": wanted})
        ids = [str(next(iter(r.values()))) for r in rows]
        if len(ids) != 1:
            stubs = [Session(i) for i in ids] if ids else []
            if not ids:
                seen = _chsummary.count(self, rollup)[0]
                plural = "" if seen == 1 else "s"
                if not wanted:
                    resolve_session_id(stubs, wanted, source=self.description)
                raise SessionIdError(f"no session {wanted} in {self.description}; {seen} session{plural} seen")
            resolve_session_id(stubs, wanted, source=self.description)
        found, result = self._build(ids[0], selection)
        if found is None:
            raise SessionIdError(f"no session {wanted} in {self.description}")
        return found, result

    # --- as a span source ---------------------------------------------------------------

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Every span (of one session when the query names one): for ``read_sessions``."""
        if query.session_id is not None:
            rows = self.query(_chqueries.show_spans_sql(self.table), {"sid": query.session_id})
        else:
            rows = self.query(
                _chqueries.show_spans_sql(self.table).split("WHERE", 1)[0]
                + "WHERE ({since:Nullable(Int64)} IS NULL OR start_ns + dur >= {since:Nullable(Int64)})"
                " AND ({until:Nullable(Int64)} IS NULL OR start_ns <= {until:Nullable(Int64)})",
                {"since": query.since_ns, "until": query.until_ns},
            )
        yield from self._records(rows)


def _value(v: Any) -> Any:
    # pdata writes a NaN or infinite double as this text: the reader drops and counts such a number.
    if isinstance(v, str) and v.startswith(_UNSUPPORTED):
        return "nan"
    return v
