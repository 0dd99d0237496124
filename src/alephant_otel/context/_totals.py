"""Roll-up counters of one session or run: what its requests added up to.

The scopes (``session()``, ``run()``) put one :class:`RequestTotals` each in
the context; the httpx hooks count every finished request in those of its
enclosing scopes, and a scope writes its totals on its span when it ends.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Final

from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n

__all__ = ["RequestTotals", "TotalsEntry"]

#: One finished request, as :meth:`RequestTotals.add` takes it:
#: (retry, intercepted, cost_usd, input_tokens, output_tokens).
TotalsEntry = tuple[bool, bool, "float | None", "int | None", "int | None"]


class RequestTotals:
    """Roll-up counters of one session or run, filled as its requests end.

    Thread-safe: requests of one run may finish on several threads. A finished
    request is one tuple appended to :attr:`pending` (``deque.append`` is
    atomic and runs in C: no lock and no Python call on the request's path,
    ~4 k instructions less per scope than a locked ``add``); the tuples are
    summed when the scope reads its totals, or once :data:`FOLD_AT` have piled
    up, so a scope holds at most that many.
    """

    FOLD_AT: Final = 1024

    __slots__ = (
        "_lock",
        "cost_usd",
        "input_tokens",
        "intercepted",
        "output_tokens",
        "pending",
        "requests",
        "retries",
        "tool_calls",
        "tool_cost_usd",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Requests finished and not summed yet (the hook appends to it itself).
        self.pending: deque[TotalsEntry] = deque()
        self.requests = 0
        self.retries = 0
        self.intercepted = 0
        self.cost_usd = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.tool_calls = 0
        self.tool_cost_usd = 0.0

    def add(
        self,
        retry: bool,
        intercepted: bool,
        cost_usd: float | None,
        input_tokens: int | None,
        output_tokens: int | None,
    ) -> None:
        """Count one finished request."""
        pending = self.pending
        pending.append((retry, intercepted, cost_usd, input_tokens, output_tokens))
        if len(pending) >= self.FOLD_AT:
            self.fold()

    def add_tool(self, cost_usd: float | None) -> None:
        """Count one finished ``tool()`` call (not on the request path: a lock is fine)."""
        with self._lock:
            self.tool_calls += 1
            self.tool_cost_usd += cost_usd or 0.0

    def fold(self) -> None:
        """Sum the pending requests into the counters."""
        with self._lock:
            pending = self.pending
            # popleft, not iteration: other threads may append meanwhile (both are atomic).
            while pending:
                try:
                    retry, intercepted, cost_usd, input_tokens, output_tokens = pending.popleft()
                except IndexError:  # pragma: no cover - only another folder empties it, and it holds the lock
                    break
                self.requests += 1
                self.retries += retry
                self.intercepted += intercepted
                self.cost_usd += cost_usd or 0.0
                self.input_tokens += input_tokens or 0
                self.output_tokens += output_tokens or 0

    def attributes(self) -> dict[str, AttributeValue]:
        """The roll-up span attributes (never the per-request names)."""
        self.fold()
        with self._lock:
            return {
                n.ATTR_TOTAL_REQUESTS: self.requests,
                n.ATTR_TOTAL_RETRIES: self.retries,
                n.ATTR_TOTAL_INTERCEPTED: self.intercepted,
                # Model and tool cost together: what the scope cost.
                n.ATTR_TOTAL_COST_USD: round(self.cost_usd + self.tool_cost_usd, 12),
                n.ATTR_TOTAL_INPUT_TOKENS: self.input_tokens,
                n.ATTR_TOTAL_OUTPUT_TOKENS: self.output_tokens,
                n.ATTR_TOTAL_TOOL_CALLS: self.tool_calls,
            }
