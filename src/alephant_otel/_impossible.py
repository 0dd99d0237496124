"""What a possible cost or token count is, and the one warning for a value that is not.

Usage and cost come from outside: the gateway's response bodies and headers,
and trace files or backends read back. A negative count, a boolean where a
count belongs (``true`` is an int in Python), a count over a billion tokens
or a cost over a million USD for one request cannot be true; summed, one
such value makes every total wrong. Such a value is dropped, never recorded:
the response hooks say so once per process (then at debug level), the
readers count it with the NaN they already drop.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["MAX_COST_USD", "MAX_TOKENS", "warn_impossible"]

#: A request never reports more tokens than this (in one count).
MAX_TOKENS: Final = 10**9
#: Nor costs more than this many USD.
MAX_COST_USD: Final = 1e6

_log = logging.getLogger("alephant_otel")
#: Holds True once the warning was logged: one warning, not one per response.
_warned: list[bool] = []


def warn_impossible(what: str, value: object) -> None:
    """Log that ``what`` from a gateway response was dropped as impossible. Never raises.

    Only numbers are shown: a string where a number belongs may hold anything.
    """
    if isinstance(value, float) or (isinstance(value, int) and value.bit_length() < 128):
        shown = repr(value)  # (a bigger int could pass the 4,300-digit limit of int to str)
    else:
        shown = f"a {type(value).__name__}"
    if not _warned:
        _warned.append(True)
        _log.warning(
            "alephant_otel: dropped an impossible %s from a gateway response (%s); the span and the totals "
            "leave it out (further ones are logged at debug level)",
            what,
            shown,
        )
    else:
        _log.debug("alephant_otel: dropped an impossible %s from a gateway response (%s)", what, shown)
