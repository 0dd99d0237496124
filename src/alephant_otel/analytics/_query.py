"""Sessions once read: their ids, filters, order and time expressions (reading: :mod:`._read`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from alephant_otel.analytics._httpsource import iso_ns
from alephant_otel.analytics._model import Request, Session

__all__ = [
    "SORT_KEYS",
    "STATUSES",
    "SessionIdError",
    "SessionSet",
    "filter_sessions",
    "parse_time",
    "resolve_session_id",
    "sort_sessions",
]

STATUSES: Final = ("active", "completed", "intercepted")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Candidates an ambiguous-prefix message names before "and N more".
_MAX_CANDIDATES: Final = 5


class SessionIdError(LookupError):
    """No session, or more than one, answers to the id or prefix a user gave.

    The message is one line; ``candidates`` holds every matching id (empty
    when none matched).
    """

    def __init__(self, message: str, candidates: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


def resolve_session_id(sessions: Iterable[Session], text: str, *, source: str | None = None) -> str:
    """The id of the one session whose id is ``text`` or starts with it.

    Every id the CLI prints can be pasted back whole or shortened to a unique
    prefix. An exact match wins over longer ids it is a prefix of.

    Args:
        sessions: The sessions to search.
        text: A session id or a unique prefix of one (surrounding blanks ignored).
        source: Where the sessions were read, for the message.

    Raises:
        SessionIdError: No session matches, or the prefix matches several
            (the message lists them).

    Examples:
        >>> from alephant_otel.analytics import Session
        >>> ss = [Session("s1a"), Session("s1b"), Session("s2c")]
        >>> resolve_session_id(ss, "s2")
        's2c'
        >>> resolve_session_id(ss, "s1")
        Traceback (most recent call last):
        ...
        alephant_otel.analytics._query.SessionIdError: session id prefix 's1' matches 2 sessions: s1a, s1b
    """
    wanted = text.strip()
    where = f" in {source}" if source else ""
    ids = [s.session_id for s in sessions]
    if not wanted:
        raise SessionIdError("empty session id: give an id or a prefix of one, as `sessions list` prints it")
    if wanted in ids:
        return wanted
    matches = sorted(i for i in dict.fromkeys(ids) if i.startswith(wanted))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        seen = len(ids)
        raise SessionIdError(f"no session {wanted}{where}; {seen} session{'' if seen == 1 else 's'} seen")
    shown = ", ".join(matches[:_MAX_CANDIDATES])
    more = f" and {len(matches) - _MAX_CANDIDATES} more" if len(matches) > _MAX_CANDIDATES else ""
    raise SessionIdError(f"session id prefix {wanted!r} matches {len(matches)} sessions{where}: {shown}{more}", matches)


def parse_time(text: str, *, now_ns: int | None = None) -> int:
    """A time given as ``1h``/``30m``/``2d``/``1w`` ago, or ISO 8601, as unix ns.

    A naive ISO time is taken as UTC.

    Raises:
        ValueError: ``text`` is neither.

    Examples:
        >>> parse_time("1h", now_ns=7_200_000_000_000)
        3600000000000
        >>> parse_time("1970-01-01T00:00:10Z")
        10000000000
    """
    now = time.time_ns() if now_ns is None else now_ns
    m = _RELATIVE.match(text)
    if m:
        return now - int(float(m.group(1)) * _UNIT_S[m.group(2).lower()] * 1_000_000_000)
    try:
        return iso_ns(text)
    except ValueError:
        raise ValueError(f"bad time {text!r}: use an ISO time (2025-01-31T12:00Z) or a span like 30m, 1h, 2d") from None


@dataclass(slots=True)
class SessionSet:
    """The sessions read from one source, with what the read saw.

    Attributes:
        sessions: Every session found, oldest first.
        source: Description of the source (path or backend URL).
        spans: Span records read.
        corrupt: Lines/documents skipped because they could not be parsed.
        outside: Request spans outside any session (calls made with no ``session()`` open), in start order.
        corrupt_values: Numbers dropped as impossible (NaN, infinite, negative, boolean, too large)
            from spans that were otherwise read.
    """

    sessions: list[Session]
    source: str
    spans: int
    corrupt: int
    outside: list[Request] = field(default_factory=list)
    corrupt_values: int = 0

    def get(self, session_id: str) -> Session | None:
        """The session with this id, if it was read."""
        return next((s for s in self.sessions if s.session_id == session_id), None)

    def resolve(self, text: str) -> Session:
        """The session whose id is ``text`` or a unique prefix of it (see :func:`resolve_session_id`).

        A run or request id (or a unique prefix of one), as ``sessions show``
        prints them in its tree, opens the session that holds it.

        Raises:
            SessionIdError: None or several match.
        """
        try:
            sid = resolve_session_id(self.sessions, text, source=self.source)
        except SessionIdError as exc:
            holder = None if exc.candidates else self._holding(text.strip())
            if holder is None:
                raise
            return holder
        found = self.get(sid)
        assert found is not None  # resolve_session_id returned one of these ids
        return found

    def _holding(self, wanted: str) -> Session | None:
        """The one session holding a run or request whose id is ``wanted`` (or starts with it)."""
        if not wanted:
            return None
        exact: list[Session] = []
        prefixed: list[Session] = []
        for s in self.sessions:
            ids = [r.run_id for r in s.walk_runs()]
            ids += [r.request_id for r in s.requests if r.request_id]
            if wanted in ids:
                exact.append(s)
            elif any(i.startswith(wanted) for i in ids):
                prefixed.append(s)
        holders = exact or prefixed
        if len(holders) > 1:
            shown = ", ".join(s.session_id for s in holders[:_MAX_CANDIDATES])
            found = [s.session_id for s in holders]
            raise SessionIdError(f"id {wanted!r} is in {len(holders)} sessions: {shown}", found)
        return holders[0] if holders else None


def filter_sessions(
    sessions: Iterable[Session],
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    agent: str | None = None,
    path: str | None = None,
    status: str | None = None,
    min_cost: float | None = None,
    user: str | None = None,
) -> list[Session]:
    """The sessions that match every given filter.

    A session is in the time range when it had activity inside it; ``path``
    matches the path exactly or as a prefix ending at ``/``.
    """
    out = []
    for s in sessions:
        if since_ns is not None and max(s.last_activity_ns, s.end_ns or 0) < since_ns:
            continue
        if until_ns is not None and s.start_ns > until_ns:
            continue
        if agent is not None and agent not in s.agents:
            continue
        if path is not None:
            p = s.path or ""
            if not (p == path or p.startswith(path.rstrip("/") + "/")):
                continue
        if status is not None and s.status != status:
            continue
        if min_cost is not None and s.cost_usd < min_cost:
            continue
        if user is not None and s.user_id != user:
            continue
        out.append(s)
    return out


SORT_KEYS: Final[dict[str, Callable[[Session], float]]] = {
    "cost": lambda s: s.cost_usd,
    "tokens": lambda s: s.tokens,
    "latency": lambda s: s.duration_s,
    "requests": lambda s: s.request_count,
    "started": lambda s: s.start_ns,
}


def sort_sessions(sessions: Sequence[Session], key: str = "started", *, descending: bool = True) -> list[Session]:
    """Sessions ordered by one of :data:`SORT_KEYS` (largest/newest first by default)."""
    try:
        fn = SORT_KEYS[key]
    except KeyError:
        raise ValueError(f"bad sort key {key!r}: one of {', '.join(SORT_KEYS)}") from None
    return sorted(sessions, key=lambda s: (fn(s), s.session_id), reverse=descending)
