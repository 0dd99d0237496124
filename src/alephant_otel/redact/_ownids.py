"""Ids this package made, noted clean for the export-time scrubber when they are made.

A request id (``req_`` + 32 hex digits) is new on every request, so the
scrubber never finds it among the values it has seen: at export it matched
the id's form (~5 k instructions per request span) to decide what is known
when the id is generated. Noting it then is the same decision, made for a
dict insert, and only while the scrubber would make it (no extra patterns,
which might match an id's form).
"""

from __future__ import annotations

from alephant_otel.redact import _scrub

__all__ = ["note_own_id"]


def note_own_id(value: str) -> None:
    """Remember ``value``, an id :func:`~alephant_otel.context._ids.new_id` made, as clean."""
    scrubber = _scrub._current
    if scrubber._ids_plain:
        clean = scrubber._clean
        if len(clean) >= _scrub._NAME_CACHE:
            clean.clear()
        clean[value] = None
