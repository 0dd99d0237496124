"""Rules for values that end up in HTTP headers.

Header values must be visible ASCII: httpx encodes header values as ASCII and
would raise on anything else, and CR/LF or other control characters would
allow header injection. Values are bounded so a runaway string cannot bloat
every request: ids 256 characters, names 256, paths 1024.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_ID_LENGTH", "MAX_NAME_LENGTH", "MAX_PATH_LENGTH", "check_value", "is_valid"]

MAX_ID_LENGTH: Final = 256
MAX_NAME_LENGTH: Final = 256
MAX_PATH_LENGTH: Final = 1024

# ids and paths: visible ASCII, no spaces; names: visible ASCII and inner spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_TEXT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")

_RULES: Final[dict[str, tuple[re.Pattern[str], int]]] = {
    "id": (_TOKEN, MAX_ID_LENGTH),
    "name": (_TEXT, MAX_NAME_LENGTH),
    "path": (_TOKEN, MAX_PATH_LENGTH),
}


def is_valid(kind: str, value: object) -> bool:
    """Whether ``value`` may be sent as a header value of this kind ("id", "name" or "path")."""
    pattern, limit = _RULES[kind]
    return isinstance(value, str) and len(value) <= limit and pattern.fullmatch(value) is not None


def check_value(field: str, kind: str, value: object) -> str:
    """Return ``value`` if valid, else raise ``ValueError`` naming ``field``."""
    if is_valid(kind, value):
        return value  # type: ignore[return-value]
    limit = _RULES[kind][1]
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{field} is {len(value)} characters long; the limit is {limit}")
    allowed = "visible ASCII characters" if kind != "name" else "visible ASCII characters and inner spaces"
    raise ValueError(
        f"{field} {value[:40]!r} is not a valid header value: only {allowed} are allowed "
        "(no control characters, CR/LF or non-ASCII)"
    )
