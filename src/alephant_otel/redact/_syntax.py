"""How a credential shows in text: the header lines, URL queries, ``name=value`` pairs and bare tokens
the scrubber looks for, as regular expressions built for speed (see the comments on each).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = []


def _mark(name: str) -> str:
    return f"[Scrubbed due to {name!r}]"


def _keep_prefix(mark: str, m: re.Match[str]) -> str:
    """A bare token's replacement: what introduced it (``Bearer ``), then the note."""
    return m.group(1) + mark


# Three passes, each one regular expression whose alternatives start with few
# characters (a single alternation with the name/value pairs in it cost ~2 µs per
# character of text): header lines and URL queries first (they own what follows
# them), then name/value pairs, then bare tokens anywhere.
_QUERY: Final = re.compile(r"(?P<qsep>[?&;#])(?P<qname>[^=&#;\s'\"<>?/]{1,100})=(?P<qval>[^&#;\s'\"<>]*)")


_HEADERS: Final = re.compile(
    r"(?P<illegal>illegal header value\s*)(?P<ival>b?(?P<iq>['\"]).*?(?P=iq))"
    r"|(?P<hname>\b(?:proxy-)?authorization|\b(?:set-)?cookie)[ \t]*:[ \t]*(?P<hval>[^\r\n\"\\]+)",
    re.IGNORECASE | re.DOTALL,
)


#: A ``name:`` or ``name=`` (quoted as in JSON or a repr, or not); its value is read by _VALUE.
#: Found from its separator: ``[:=]`` is scanned for quickly, the name read backwards
#: from there (in the reversed text: a match anchored at one place, not tried at every one).
_SEP: Final = re.compile(r"[:=]")


_NAME_BACKWARDS: Final = re.compile(r"[ \t]*(?P<q>\"\\|'\\|\"|'|)(?P<name>[\w.%-]+)(?P=q)(?![\w.%-])")


_SPACES: Final = re.compile(r"[ \t]*")


_VALUE: Final = re.compile(
    r"b?\"(?:[^\"\\\r\n]|\\.)*\""  # "..." (JSON, repr)
    r"|b?'(?:[^'\\\r\n]|\\.)*'"  # '...' (repr)
    r"|\\\"(?:[^\\]|\\[^\"])*\\\""  # \"...\" (JSON inside a JSON string)
    # Unquoted: to whitespace, ``&``, ``;``, a quote or the end (``Ab(cSECRET)`` whole); a
    # backslash only when it starts an escape (``\n`` in a repr), then trim_value.
    r"|(?:(?:bearer|basic|digest|token|negotiate|apikey|aws4-hmac-sha256)\s+)?(?:[^\s&;'\"\\]|\\(?![nrt\"'\\]))+",
    re.IGNORECASE,
)


#: Bare tokens, each looked for only when its lower-case marker is in the text.
_TOKENS: Final = (
    ("bearer", re.compile(r"(\bbearer\s+)[A-Za-z0-9\-._~+/=]{6,}", re.IGNORECASE), "bearer token"),
    (
        "basic",
        re.compile(
            r"(\bbasic\s+)(?=[A-Za-z0-9+/]*[0-9+/=]|[A-Za-z0-9+/]+(?-i:[A-Z]))[A-Za-z0-9+/]{8,}={0,2}", re.IGNORECASE
        ),
        "basic credentials",
    ),
    ("sk-", re.compile(r"()\bsk-[A-Za-z0-9][A-Za-z0-9_\-./+=~]{7,}", re.IGNORECASE), "gateway key"),
)
