"""The questions every command asks, of either kind of source (:mod:`._summary`).

:func:`list_sessions`, :func:`session_vitals` and :func:`show_session` open the
source a ``--source`` value names, and either rebuild the sessions from its spans
or let a summary source answer.
"""

from __future__ import annotations

from pathlib import Path

from alephant_otel.analytics._model import Request, Session
from alephant_otel.analytics._query import SessionSet, filter_sessions, sort_sessions
from alephant_otel.analytics._read import read_sessions
from alephant_otel.analytics._sources import open_source
from alephant_otel.analytics._spansource import Progress, SpanSource
from alephant_otel.analytics._summary import Listing, Selection, SummarySource
from alephant_otel.analytics._vitals import Vitals, VitalsConfig, compute_vitals

__all__ = ["list_sessions", "session_vitals", "show_session"]


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
