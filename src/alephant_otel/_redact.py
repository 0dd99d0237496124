"""Credentials out of the text that telemetry exports (URLs, exception messages)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["redact_url"]

#: Query parameters that carry credentials; OTel's own redaction only covers cloud signatures.
_SECRET_PARAM: Final = re.compile(
    r"(?i)([?&;]|^)((?:api[_-]?key|apikey|x-api-key|key|access[_-]?token|token|secret|password|auth|sig|signature)=)"
    # A value ends where a URL parameter does, or, in free text (exception messages), at a
    # space or quote: the rest of the message or stack trace stays readable.
    r"[^&#;\s'\"<>]*"
)


def redact_url(value: str) -> str:
    """Replace the values of credential-like query parameters with ``REDACTED``."""
    return _SECRET_PARAM.sub(r"\1\2REDACTED", value)
