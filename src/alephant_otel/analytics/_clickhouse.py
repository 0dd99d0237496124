"""ClickHouse as a source: the sessions computed in the server, over the Collector's ``otel_traces``.

``--source clickhouse+http://host:8123/DATABASE`` (or ``clickhouse+https://``;
``?table=NAME`` for another table than ``otel_traces``, ``?timeout=SECONDS``
for another bound on each query than 30 s). The user and password come from
``CLICKHOUSE_USER``/``CLICKHOUSE_PASSWORD``, or from the URL
(``clickhouse+http://user:password@host:8123/db``); no message ever prints
the password.

This is a :class:`~._summary.SummarySource`: ``sessions list`` sends one query
whose answer is one row per listed session (filters, sort and limit are bound
parameters in the SQL of ``_chsql``); ``vitals`` gets its percentiles and
groups from the server; ``show`` reads the spans of one session's traces
(found through the exporter's indexes) and rebuilds the tree with the same
builder as every other source. When the roll-up of
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

from alephant_otel.analytics import _chsql
from alephant_otel.analytics._convert import record_from_flat
from alephant_otel.analytics._model import Request, Rollup, Run, Session, SpanRecord, _Totals
from alephant_otel.analytics._query import SessionIdError, SessionSet, resolve_session_id
from alephant_otel.analytics._reconstruct import SessionBuilder
from alephant_otel.analytics._spansource import Progress, SourceError, SourceSpecError, SpanQuery
from alephant_otel.analytics._summary import Listing, Selection
from alephant_otel.analytics._vitals import GroupVitals, Vitals, VitalsConfig, assemble_vitals

__all__ = ["EXTRA_MISSING", "ClickHouseSource"]

EXTRA_MISSING: Final = "reading ClickHouse needs the clickhouse extra: pip install 'alephant-otel[clickhouse]'"
_DEFAULT_TABLE: Final = "otel_traces"
_DEFAULT_DATABASE: Final = "otel"
_TIMEOUT_S: Final = 30.0
_NO_LIMIT: Final = 2**63 - 1
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

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of one query (``{name:Type}`` placeholders bound from ``params``) as dicts.

        Raises:
            SourceError: The server cannot be reached, refused the credentials or failed the query.
        """
        client = self._connect()
        try:
            result = client.query(sql, parameters=dict(params or {}), settings=self._settings)
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

    def _notes(self, rollup: bool) -> list[str]:
        if rollup or self._fallback_said:
            return []
        self._fallback_said = True
        return [
            f"no roll-up table {self.table}{_chsql.ROLLUP_SUFFIX} in {self.database}: reading the spans of "
            f"{self.table} (slower; collector-config/clickhouse/ has the SQL that adds it)"
        ]

    # --- summaries ----------------------------------------------------------------

    @staticmethod
    def _params(sel: Selection) -> dict[str, Any]:
        import time

        now = time.time_ns() if sel.now_ns is None else sel.now_ns
        return {
            "now_ns": now,
            "window_ns": int(sel.active_window_s * 1e9),
            "since_ns": sel.since_ns,
            "until_ns": sel.until_ns,
            "agent": sel.agent,
            "path": sel.path,
            "status": sel.status,
            "min_cost": sel.min_cost,
            "limit": sel.limit or _NO_LIMIT,
        }

    def _listing(self, rows: Sequence[dict[str, Any]], sel: Selection, rollup: bool, *, notes: bool = True) -> Listing:
        sessions = [_session(r) for r in rows]
        seen, corrupt = (int(rows[0]["seen"]), int(rows[0]["corrupt_all"])) if rows else self._count(rollup)
        said = self._notes(rollup) if notes else []
        outside = self._outside(sel, rollup)
        return Listing(sessions, seen, self.description, self.corrupt, corrupt, outside, said)

    def _count(self, rollup: bool) -> tuple[int, int]:
        """Sessions and corrupt numbers in all, for an answer that selected none ("0 of N sessions")."""
        sql = _chsql.list_sql(self.table, rollup=rollup, sort="started")
        rows = self.query(f"SELECT max(seen) AS n, max(corrupt_all) AS c FROM ({sql})", self._params(Selection()))
        if not rows or rows[0]["n"] is None:
            return 0, 0
        return int(rows[0]["n"]), int(rows[0]["c"])

    def _outside(self, sel: Selection, rollup: bool) -> list[Request]:
        if sel.narrowed:
            return []
        sql = _chsql.outside_sql(self.table, rollup)
        rows = self.query(sql, {"since_ns": sel.since_ns, "until_ns": sel.until_ns})
        out = []
        for r in rows:
            req = Request(None, r["trace_id"], r["span_id"], None, "", int(r["start_ns"]), int(r["end_ns"]))
            req.agent_id = r["agent"] or None
            req.retry_attempt = int(r["retry"])
            req.error = bool(r["error"])
            req.intercepted = bool(r["icpt"])
            req.cost_usd = float(r["cost"])
            req.input_tokens = int(r["inp"])
            req.output_tokens = int(r["outp"])
            out.append(req)
        return out

    def list_sessions(self, selection: Selection) -> Listing:
        """The selected sessions, one row each from the server (from the roll-up when there is one)."""
        _no_user_filter(selection)
        rollup = self.has_rollup()
        sql = _chsql.list_sql(self.table, rollup=rollup, sort=_sort(selection.sort))
        rows = self.query(sql, self._params(selection))
        return self._listing(rows, selection, rollup)

    def vitals(self, selection: Selection, config: VitalsConfig) -> tuple[Vitals, Listing]:
        """Vitals from the server: the list's rows, then per-session latency percentiles and the groups
        by agent over the chosen sessions' requests (their ids sent as a bound array)."""
        _no_user_filter(selection)
        params = self._params(selection)
        rows = self.query(_chsql.list_sql(self.table, rollup=False, sort=_sort(selection.sort)), params)
        listing = self._listing(rows, selection, rollup=False, notes=False)  # vitals read the spans
        chosen = {"sids": [s.session_id for s in listing.sessions]}
        per = {r["sid"]: r for r in self.query(_chsql.vitals_sessions_sql(self.table), chosen)} if rows else {}
        none = {"lat_p50": 0.0, "lat_p95": 0.0, "lat_max": 0.0, "has_requests": False, "reasons": []}
        stats, reasons = [], []
        for s in listing.sessions:
            r = per.get(s.session_id, none)
            stats.append((float(r["lat_p50"]), float(r["lat_p95"]), float(r["lat_max"]), bool(r["has_requests"])))
            reasons.append(sorted(x for x in r["reasons"] or () if x))
        failed = [0 if r["from_rollup"] else int(r["failed"]) for r in rows]
        groups = self.query(_chsql.vitals_agents_sql(self.table), chosen) if rows else []
        by_agent = [
            GroupVitals(
                str(g["key"]),
                int(g["sessions"]),
                int(g["requests"]),
                float(g["cost"]),
                int(g["inp"]),
                int(g["outp"]),
                int(g["retries"]),
                int(g["intercepted"]),
                int(g["errors"]),
            )
            for g in groups
            if g["key"]
        ]
        overall = next((g for g in groups if not g["key"]), None)
        p50 = float(overall["p50"]) if overall else 0.0
        p95 = float(overall["p95"]) if overall else 0.0
        vitals = assemble_vitals(listing.sessions, stats, reasons, failed, by_agent, p50, p95, config)
        return vitals, listing

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
        rows = self.query(_chsql.show_spans_sql(self.table), {"sid": sid})
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
        rows = self.query(_chsql.prefix_sql(self.table, rollup), {"p": wanted})
        ids = [str(next(iter(r.values()))) for r in rows]
        if len(ids) != 1:
            stubs = [Session(i) for i in ids] if ids else []
            if not ids:
                seen = self._count(rollup)[0]
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
            rows = self.query(_chsql.show_spans_sql(self.table), {"sid": query.session_id})
        else:
            rows = self.query(
                _chsql.show_spans_sql(self.table).split("WHERE", 1)[0]
                + "WHERE ({since:Nullable(Int64)} IS NULL OR start_ns + dur >= {since:Nullable(Int64)})"
                " AND ({until:Nullable(Int64)} IS NULL OR start_ns <= {until:Nullable(Int64)})",
                {"since": query.since_ns, "until": query.until_ns},
            )
        yield from self._records(rows)


def _sort(key: str) -> str:
    if key not in _chsql.SORT_SQL:
        raise ValueError(f"bad sort key {key!r}: one of {', '.join(_chsql.SORT_SQL)}")
    return key


def _value(v: Any) -> Any:
    # pdata writes a NaN or infinite double as this text: the reader drops and counts such a number.
    if isinstance(v, str) and v.startswith(_UNSUPPORTED):
        return "nan"
    return v


def _session(r: Mapping[str, Any]) -> Session:
    """A summary :class:`Session` from one row of ``list_sql``: totals, runs (flat), agents, status."""
    s = Session(
        session_id=str(r["sid"]),
        name=r["name"],
        path=r["path"],
        status=r["status"],
        start_ns=int(r["start_ns"]),
        end_ns=int(r["ss_end"]) or None,
        last_activity_ns=int(r["last_ns"]),
        span_present=bool(r["span_present"]),
        totals_from_rollup=bool(r["from_rollup"]),
    )
    if r["rollups"]:
        s.rollup = Rollup(
            int(r["r_requests"]),
            int(r["r_retries"]),
            int(r["r_intercepted"]),
            float(r["r_cost"]),
            int(r["r_input"]),
            int(r["r_output"]),
        )
    s._totals = _Totals(
        int(r["t_requests"]),
        int(r["t_retries"]),
        int(r["t_errors"]),
        int(r["t_intercepted"]),
        float(r["t_cost"]),
        int(r["t_input"]),
        int(r["t_output"]),
    )
    s.agents = [str(a) for a in r["agent_list"]]
    s.trace_ids = [str(t) for t in r["trace_list"]]
    s.runs = [Run(run_id=str(rid)) for rid in r["run_ids"]]
    return s


def _no_user_filter(selection: Selection) -> None:
    # The SQL does not read user.id yet: a filter it would ignore must not answer as if applied.
    if selection.user:
        raise SourceError("--user is not supported on a ClickHouse source yet; filter on a trace file or backend")
