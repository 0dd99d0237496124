"""The seam every span source fits: what is asked (:class:`SpanQuery`), what answers, and the errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from alephant_otel.analytics._model import SpanRecord

if TYPE_CHECKING:
    pass

__all__ = ["BACKEND_LIMIT", "Progress", "SourceError", "SourceSpecError", "SpanQuery", "SpanSource", "TraceFileMissing"]

_log = logging.getLogger(__name__)


#: Called with (done, total) as a read advances; total is None when unknown.
Progress = Callable[[int, "int | None"], None]

BACKEND_LIMIT: Final = 1000


class SourceError(Exception):
    """A source cannot be read: a missing file, an unreachable or failing backend.

    The message is one line a user can act on.
    """


class TraceFileMissing(SourceError):
    """The trace file does not exist (yet): a writer may still create it.

    Attributes:
        path: The file.
    """

    def __init__(self, path: Path, hint: str = "") -> None:
        super().__init__(f"no trace file at {path}" + (f" ({hint})" if hint else ""))
        self.path = path


class SourceSpecError(SourceError):
    """The source's name itself is wrong (``http://...`` without ``tempo+``, an unknown scheme).

    A usage error: the CLI exits 2 for it, 1 for other :class:`SourceError`.
    """


@dataclass(frozen=True, slots=True)
class SpanQuery:
    """What to fetch. Backends use it to narrow the request; the file reads all.

    Attributes:
        since_ns: Only traces/spans after this time (unix ns), when set.
        until_ns: Only traces/spans before this time (unix ns), when set.
        session_id: Only this session, when set.
        limit: Most traces (Tempo, Jaeger) to fetch per query.
    """

    since_ns: int | None = None
    until_ns: int | None = None
    session_id: str | None = None
    limit: int = BACKEND_LIMIT


class SpanSource(Protocol):
    """A place spans are read from."""

    #: Human description used in messages ("no session x in <description>").
    description: str
    #: Lines (file) or documents (backends) that could not be parsed and were skipped.
    corrupt: int

    def spans(self, query: SpanQuery, progress: Progress | None = None) -> Iterator[SpanRecord]:
        """Every span the query covers."""
        ...
