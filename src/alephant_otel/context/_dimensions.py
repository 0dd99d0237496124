"""Who a session serves (``user_id``) and the user's own dimensions (``metadata``).

Both travel in baggage like the ids (``alephant.user.id``,
``alephant.metadata.<key>``), so threads, tasks and other processes see them,
and become span attributes (``user.id``, ``alephant.metadata.<key>``) on
every span in the session. They are never gateway headers (the gateway
defines six) and never metric dimensions (unbounded).

Values follow the header-value rules of the ids (they may be propagated
as W3C baggage): the user id as an id, metadata values as names. Metadata keys
are identifier-like tokens, at most :data:`MAX_METADATA` of them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from opentelemetry.util.types import AttributeValue

from alephant_otel import _names as n
from alephant_otel.context._validate import check_value, is_valid

__all__ = [
    "MAX_METADATA",
    "check_metadata",
    "check_user_id",
    "dimension_attributes",
    "metadata_entries",
    "metadata_of",
    "warned_keys",
]

_log = logging.getLogger("alephant_otel.context._context")

MAX_METADATA: Final = 16
#: A metadata key: a letter or underscore, then letters, digits, ``_``, ``-`` or ``.``; 64 at most.
_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_PREFIX: Final = n.BAGGAGE_METADATA_PREFIX
_PREFIX_LEN: Final = len(_PREFIX)
_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})

#: Inbound baggage keys already warned about (the ids' too): one warning each per process.
warned_keys: set[str] = set()


def check_user_id(user_id: object) -> str:
    """``user_id`` if it is a valid id (visible ASCII, no spaces, at most 256), else ``ValueError``."""
    return check_value("user_id", "id", user_id)


def check_metadata(metadata: object) -> dict[str, str]:
    """``metadata`` as a plain dict if every key and value is valid, else ``ValueError`` naming the field."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a dict of str to str, got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA:
        raise ValueError(f"metadata has {len(metadata)} entries; the limit is {MAX_METADATA}")
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or _KEY.fullmatch(key) is None:
            raise ValueError(
                f"metadata key {key!r} is not valid: a letter or '_' then letters, digits, '_', '-' or '.' "
                "(at most 64 characters)"
            )
        clean[key] = check_value(f"metadata[{key!r}]", "name", value)
    return clean


def metadata_entries(metadata: Mapping[str, str]) -> dict[str, str]:
    """Baggage entries for already-checked ``metadata``."""
    return {_PREFIX + key: value for key, value in metadata.items()}


def _warn(what: str, message: str) -> None:
    if what not in warned_keys:
        warned_keys.add(what)
        _log.warning(message, what)


def metadata_of(entries: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    """The ``alephant.metadata.*`` baggage entries, as sorted (key, value) pairs (a cache key)."""
    found = [(key[_PREFIX_LEN:], value) for key, value in entries.items() if key.startswith(_PREFIX)]
    if not found:
        return ()
    found.sort()
    return tuple(found)


def dimension_attributes(
    user_id: str | None, pairs: tuple[tuple[str, object], ...]
) -> tuple[dict[str, AttributeValue], Mapping[str, str]]:
    """Span attributes and the clean metadata for an inbound (already validated) user id and metadata pairs.

    A bad metadata key or value is dropped with one warning per key, as a bad id is.
    """
    attrs: dict[str, AttributeValue] = {}
    if user_id is not None:
        attrs[n.ATTR_USER_ID] = user_id
    if not pairs:
        return attrs, _EMPTY
    metadata: dict[str, str] = {}
    for key, value in pairs:
        if _KEY.fullmatch(key) is None or not is_valid("name", value):
            _warn(
                _PREFIX + key,
                "dropping baggage entry %r: not a valid metadata key or value (control characters, "
                "non-ASCII, or too long); further drops of this key are silent",
            )
            continue
        if len(metadata) >= MAX_METADATA:
            _warn(
                _PREFIX + "*",
                f"dropping %r entries past the first {MAX_METADATA} metadata keys in baggage",
            )
            break
        metadata[key] = str(value)
        attrs[n.ATTR_METADATA_PREFIX + key] = str(value)
    return attrs, MappingProxyType(metadata)
