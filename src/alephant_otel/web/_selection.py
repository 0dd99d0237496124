"""The sessions one filter and sort of the list selects, and what the page draws from them.

Kept per version of the source and per filter (the page, its charts and ``/api/list`` share one),
so a page of five charts and a breakdown computes the vitals once.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from alephant_otel.analytics import Session, Vitals, compute_vitals
from alephant_otel.web._groups import group_rows

__all__ = ["SELECTIONS", "Selected"]

#: Selections kept (the oldest is dropped first).
SELECTIONS: Final = 32


class Selected:
    """The sessions one filter and sort selects, and their vitals once asked for."""

    def __init__(self, chosen: list[Session], problems: list[str]) -> None:
        self.chosen = chosen
        self.problems = problems
        self._vitals: Vitals | None = None
        self._groups: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @property
    def vitals(self) -> Vitals:
        """The vitals of the chosen sessions, computed on first use."""
        with self._lock:
            if self._vitals is None:
                self._vitals = compute_vitals(self.chosen)
            return self._vitals

    def groups(self, by: str) -> list[dict[str, Any]]:
        """The table rows of the cost breakdown by ``by`` (the page and ``/api/list`` share them)."""
        vitals = self.vitals
        with self._lock:
            found = self._groups.get(by)
            if found is None:
                found = self._groups[by] = group_rows(self.chosen, by, vitals)
            return found
