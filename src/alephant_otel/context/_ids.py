"""Id generation for sessions, runs and requests.

Ids are a prefix plus 32 hex digits: 12 for the Unix time in milliseconds,
20 (80 bits) random. Lexicographic order is creation order to the
millisecond, like UUIDv7, so ids sort well in logs and backends, and they
contain only characters valid in an HTTP header and a W3C baggage value.

The random part comes from ``random.getrandbits``, as the SDK's own trace and
span ids do: ids must be unique, not secret, and this avoids a system call per
request (``os.urandom``). The module reseeds itself in a forked child.
"""

from __future__ import annotations

import time
from random import getrandbits

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """Return a new sortable unique id such as ``sess_0193f0c2a1b47d9e3c2f1a0b9c8d7e6f``."""
    # One 128-bit number, the milliseconds above the 80 random bits, as 16 bytes in hex:
    # a third of the cost of formatting it (``:032x``), on every request.
    return prefix + (time.time_ns() // 1_000_000 << 80 | getrandbits(80)).to_bytes(16, "big").hex()
