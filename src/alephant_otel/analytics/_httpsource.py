"""What the HTTP backends' span sources share: the ``--source`` URL, the client, times."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from alephant_otel.analytics._http import HttpGetter

if TYPE_CHECKING:
    pass

from alephant_otel.analytics._spansource import SourceError, SourceSpecError

__all__ = ["HttpSource", "iso_ns", "iso_of", "ns_of", "parse_base", "seconds"]

_log = logging.getLogger(__name__)

_TIMEOUT_S: Final = 30.0


# --- HTTP backends ------------------------------------------------------------------


def parse_base(spec: str) -> tuple[str, dict[str, list[str]]]:
    scheme, _, rest = spec.partition("+")
    parts = urlsplit(rest)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceSpecError(f"bad source {spec!r}: expected {scheme}+http(s)://host:port")
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return base, parse_qs(parts.query)


class HttpSource:
    """Shared HTTP plumbing (standard library only, see ``_http``): errors become :class:`SourceError`."""

    name = "backend"

    def __init__(self, base: str, headers: Mapping[str, str] | None = None) -> None:
        self.base = base
        self.corrupt = 0
        self._headers = dict(headers or {})

    def _client(self) -> HttpGetter:
        return HttpGetter(self.name, self.base, self._headers, SourceError, _TIMEOUT_S)


def seconds(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000_000_000


def iso_ns(text: str) -> int:
    """An ISO 8601 time as unix ns; a naive time is UTC. Raises ``ValueError`` when it is not one."""
    raw = text.strip()
    dt = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp loses nanoseconds (and microseconds at this magnitude).
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ns_of(value: Any) -> int:
    return iso_ns(value) if isinstance(value, str) and value else 0


def iso_of(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()
