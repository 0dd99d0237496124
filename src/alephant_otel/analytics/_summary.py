"""The two kinds of source, and the questions every command asks either of them.

A *span source* (the trace file, Tempo, Jaeger, Phoenix) streams spans; the
sessions are rebuilt here by :class:`~._reconstruct.SessionBuilder`, and
filtering, sorting and vitals run over the rebuilt sessions.

A *summary source* (ClickHouse) answers the questions itself: the server
groups the spans into sessions, filters, sorts and limits them, and sends
back one row per session. It returns the same model objects the builder
produces (:class:`~._model.Session`, :class:`~._vitals.Vitals`), so the
commands print either alike.

The commands call :func:`list_sessions`, :func:`session_vitals` and
:func:`show_session` and never ask which kind they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from alephant_otel.analytics._model import Request, Session
from alephant_otel.analytics._query import (
    SessionSet,
    filter_sessions,
    read_sessions,
    sort_sessions,
)
from alephant_otel.analytics._reconstruct import DEFAULT_ACTIVE_WINDOW_S
from alephant_otel.analytics._sources import Progress, SpanSource, open_source
from alephant_otel.analytics._vitals import Vitals, VitalsConfig, compute_vitals

__all__ = [
    "Listing",
    "Selection",
    "SummarySource",
    "list_sessions",
    "session_vitals",
    "show_session",
]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which sessions a command asks for, and in what order.

    Attributes:
        since_ns: Sessions with activity at or after this time (unix ns).
        until_ns: Sessions that started at or before this time (unix ns).
        agent: Sessions in which this agent made a request or ran.
        path: Sessions on this path or below it (``/a`` matches ``/a/b``).
        status: ``active``, ``completed`` or ``intercepted``.
        min_cost: Sessions that cost at least this much (USD).
        user: Sessions serving this user (``session(user_id=...)``).
        sort: One of ``SORT_KEYS``; largest or newest first.
        limit: At most this many sessions (0: all).
        active_window_s: How recent the last span of a session without an ended session span
            must be for it to be ``active``.
        now_ns: "Now" for that decision (None: the clock).
    """

    since_ns: int | None = None
    until_ns: int | None = None
    agent: str | None = None
    path: str | None = None
    status: str | None = None
    min_cost: float | None = None
    user: str | None = None
    sort: str = "started"
    limit: int = 0
    active_window_s: float = DEFAULT_ACTIVE_WINDOW_S
    now_ns: int | None = None

    @property
    def narrowed(self) -> bool:
        """Whether a filter other than time is set (requests outside any session then do not apply)."""
        return bool(self.agent or self.path or self.status or self.user or self.min_cost is not None)


@dataclass(slots=True)
class Listing:
    """What ``sessions list`` shows.

    Attributes:
        sessions: The selected sessions, in the order asked, at most ``limit``.
        seen: Sessions the source holds (before the filters).
        source: Description of the source.
        corrupt: Lines/documents/rows skipped as unreadable.
        corrupt_values: Numbers dropped as corrupt.
        outside: Requests outside any session in the time range (none when another filter is set).
        notes: One-line remarks the source wants shown once (e.g. a fallback it took).
    """

    sessions: list[Session]
    seen: int
    source: str
    corrupt: int = 0
    corrupt_values: int = 0
    outside: list[Request] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class SummarySource(Protocol):
    """A source that answers session questions itself (the work done in its server)."""

    #: Human description used in messages; never holds a credential.
    description: str
    #: Rows that could not be read and were skipped.
    corrupt: int

    def list_sessions(self, selection: Selection) -> Listing:
        """The sessions ``selection`` selects, as summaries (no requests, runs as a flat count)."""
        ...

    def vitals(self, selection: Selection, config: VitalsConfig) -> tuple[Vitals, Listing]:
        """The vitals of the selected sessions, and the listing they cover."""
        ...

    def show(self, session_id: str, selection: Selection) -> tuple[Session, SessionSet]:
        """The full tree of the session whose id is ``session_id`` or a unique prefix of it.

        Raises:
            SessionIdError: None or several match.
        """
        ...


AnySource = SpanSource | SummarySource


def _open(source: str | Path | AnySource | None) -> AnySource:
    if source is None or isinstance(source, (str, Path)):
        return open_source(source)
    return source


def _outside(result: SessionSet, sel: Selection) -> list[Request]:
    if sel.narrowed:
        return []
    since, until = sel.since_ns, sel.until_ns
    return [
        r
        for r in result.outside
        if (since is None or max(r.start_ns, r.end_ns) >= since) and (until is None or r.start_ns <= until)
    ]


def _read(src: SpanSource, sel: Selection, progress: Progress | None, summary: bool) -> tuple[SessionSet, Listing]:
    result = read_sessions(
        src,
        since_ns=sel.since_ns,
        until_ns=sel.until_ns,
        now_ns=sel.now_ns,
        active_window_s=sel.active_window_s,
        progress=progress,
        summary=summary,
    )
    chosen = filter_sessions(
        result.sessions,
        since_ns=sel.since_ns,
        until_ns=sel.until_ns,
        agent=sel.agent,
        path=sel.path,
        status=sel.status,
        min_cost=sel.min_cost,
        user=sel.user,
    )
    chosen = sort_sessions(chosen, sel.sort)
    if sel.limit:
        chosen = chosen[: sel.limit]
    listing = Listing(
        chosen,
        len(result.sessions),
        result.source,
        result.corrupt,
        result.corrupt_values,
        _outside(result, sel),
    )
    return result, listing


def list_sessions(
    source: str | Path | AnySource | None, selection: Selection, progress: Progress | None = None
) -> Listing:
    """The sessions ``selection`` picks from ``source``: summaries (totals, runs, agents, status).

    Raises:
        SourceError: The source cannot be read.
    """
    src = _open(source)
    if isinstance(src, SummarySource):
        return src.list_sessions(selection)
    # The list reads totals per run, never a request: memory grows with runs, not requests.
    return _read(src, selection, progress, summary=True)[1]


def session_vitals(
    source: str | Path | AnySource | None,
    selection: Selection,
    config: VitalsConfig | None = None,
    progress: Progress | None = None,
) -> tuple[Vitals, Listing]:
    """Vitals of the sessions ``selection`` picks, and the listing they were computed over.

    Raises:
        SourceError: The source cannot be read.
    """
    cfg = config or VitalsConfig()
    src = _open(source)
    if isinstance(src, SummarySource):
        return src.vitals(selection, cfg)
    _, listing = _read(src, selection, progress, summary=False)
    return compute_vitals(listing.sessions, cfg), listing


def show_session(
    source: str | Path | AnySource | None,
    session_id: str,
    selection: Selection,
    progress: Progress | None = None,
) -> tuple[Session, SessionSet]:
    """The full tree of one session (an id or a unique prefix of one), and the read it came from.

    Raises:
        SourceError: The source cannot be read.
        SessionIdError: No session, or several, answer to ``session_id``.
    """
    src = _open(source)
    if isinstance(src, SummarySource):
        return src.show(session_id, selection)
    # A backend is asked for this exact id first; a prefix needs every session.
    result = read_sessions(
        src,
        since_ns=selection.since_ns,
        until_ns=selection.until_ns,
        session_id=session_id,
        now_ns=selection.now_ns,
        active_window_s=selection.active_window_s,
        progress=progress,
    )
    found = result.get(session_id)
    if found is None and not hasattr(src, "read_into"):
        result = read_sessions(
            src,
            since_ns=selection.since_ns,
            until_ns=selection.until_ns,
            now_ns=selection.now_ns,
            active_window_s=selection.active_window_s,
            progress=progress,
        )
    if found is None:
        found = result.resolve(session_id)
    return found, result
