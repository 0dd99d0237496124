"""Reading the sessions from a span source: spans in, rebuilt sessions out."""

from __future__ import annotations

import gc
from pathlib import Path

from alephant_otel.analytics._model import Session
from alephant_otel.analytics._query import SessionSet
from alephant_otel.analytics._reconstruct import DEFAULT_ACTIVE_WINDOW_S, SessionBuilder
from alephant_otel.analytics._sources import open_source
from alephant_otel.analytics._spansource import Progress, SpanQuery, SpanSource

__all__ = ["load_sessions", "read_sessions"]


def read_sessions(
    source: str | Path | SpanSource | None = None,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    session_id: str | None = None,
    now_ns: int | None = None,
    active_window_s: float = DEFAULT_ACTIVE_WINDOW_S,
    progress: Progress | None = None,
    summary: bool = False,
) -> SessionSet:
    """Read spans from ``source`` and rebuild the sessions in them.

    Args:
        source: A trace file path, a ``tempo+``/``jaeger+``/``phoenix+`` URL,
            an already opened source, or ``None`` for the default trace file.
        since_ns: Narrow a backend query to after this time (unix ns).
        until_ns: Narrow a backend query to before this time (unix ns).
        session_id: Narrow a backend query to one session (a file is still read whole).
        now_ns: "Now" for the active/completed decision.
        active_window_s: Recent-activity window for ``active``.
        progress: Called with (done, total) while the read runs.
        summary: Keep the totals of each run and session, not its requests:
            ``requests`` and ``direct_requests`` stay empty, everything else
            (runs, agents, totals, status) is as in a full read. What
            ``sessions list`` reads: a few hundred bytes per run instead of
            per request.

    Raises:
        SourceError: The source cannot be read (missing file, backend unreachable).
    """
    src = open_source(source) if source is None or isinstance(source, (str, Path)) else source
    builder = SessionBuilder(summary=summary)
    query = SpanQuery(since_ns=since_ns, until_ns=until_ns, session_id=session_id)
    add = builder.add
    # The read allocates one small object per request and frees the parsed JSON
    # at once, and the build one tree per session over them; the cyclic GC would
    # rescan the growing heap over and over (measured: half the read time, and
    # 3x the build's), and there are no cycles to find here.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # A source that can feed the builder itself (the trace file: rows, worker
        # processes) does; the others yield records.
        read_into = getattr(src, "read_into", None)
        if read_into is not None:
            read_into(builder, progress)
        else:
            for rec in src.spans(query, progress):
                add(rec)
        sessions = builder.build(now_ns=now_ns, active_window_s=active_window_s, consume=True)
    finally:
        if gc_was_enabled:
            gc.enable()
    outside = sorted(builder.outside, key=lambda r: (r.start_ns, r.span_id))
    return SessionSet(sessions, src.description, builder.spans, src.corrupt, outside, builder.corrupt_values)


def load_sessions(
    source: str | Path | None = None,
    *,
    now_ns: int | None = None,
    active_window_s: float = DEFAULT_ACTIVE_WINDOW_S,
) -> list[Session]:
    """The sessions in a trace file or backend, oldest first.

    Examples:
        >>> from alephant_otel.analytics import load_sessions
        >>> sessions = load_sessions("traces.jsonl")  # doctest: +SKIP
        >>> [(s.session_id, s.cost_usd, s.request_count, s.status) for s in sessions]  # doctest: +SKIP

    Raises:
        SourceError: The source cannot be read.
    """
    return read_sessions(source, now_ns=now_ns, active_window_s=active_window_s).sessions
