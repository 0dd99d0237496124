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
from typing import Protocol, runtime_checkable

from alephant_otel.analytics._model import Request, Session
from alephant_otel.analytics._query import (
    SessionSet,
)
from alephant_otel.analytics._reconstruct import DEFAULT_ACTIVE_WINDOW_S
from alephant_otel.analytics._vitals import Vitals, VitalsConfig

__all__ = [
    "Listing",
    "Selection",
    "SummarySource",
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
