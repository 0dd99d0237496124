"""One switch for the fast paths that write into other libraries' private structures.

Four steps of the per-request path go around a public API:

- ``_hooks``: the gateway headers are appended, pre-encoded, to httpx's and
  httpx2's ``Headers._list`` (``Headers.__setitem__`` re-encodes and rescans
  every header on each call), and a response's headers are read in one pass;
- ``_spanattrs``: attributes this package has validated are written into the
  SDK span's ``BoundedAttributes._dict`` (and a new name into ``_name``),
  without the SDK cleaning them again;
- ``_spanattrs``: the scrubber reads an ended span's name, attributes, events
  and status description from the SDK's fields (``ended_parts``), not through
  the properties that wrap and copy them; read only, after the span ended;
- ``_hooks``: a stand-in for a request span's ``end`` until its response
  comes, so that a request that gets none (a timeout, a refused connection, a
  cancelled task) is still annotated and counted. No public hook runs while
  the span can still take attributes: the SDK's span processors are called
  after the span has become read-only.

The first two are probed once per class, by behaviour, the third checks the
span class and the exact types it reads on each call, and each falls back to
the public API on any difference. ``ALEPHANT_NO_FAST_PATHS=1``, read once at
import, turns all four off: a diagnostic, to tell whether a fault comes from a
fast path. The public APIs are then used throughout, and a request that gets no
response is neither annotated nor counted. ``benchmarks/README.md`` lists what
each one saves, in instructions per request.
"""

from __future__ import annotations

import os
from typing import Final

from alephant_otel import _names as n

__all__ = ["ENABLED"]

#: False when ``ALEPHANT_NO_FAST_PATHS`` is set to a true value ("1", "true", "yes", "on").
ENABLED: Final = os.environ.get(n.ENV_NO_FAST_PATHS, "").strip().lower() not in ("1", "true", "yes", "on")
