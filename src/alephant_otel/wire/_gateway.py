"""Which outgoing requests are gateway requests.

Only hosts of the configured gateway URL(s) get alephant-* headers and
``x-request-id``. Matching works on the parsed URL (scheme, host, port and a
path prefix), never on substrings, so lookalikes such as
``ai.alephant.io.evil.test``, ``evil.test/ai.alephant.io`` or
``ai.alephant.io@evil.test`` are not the gateway.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = ["GatewayMatcher", "add_extra_gateway", "ip_literal", "parse_gateway_urls", "remove_extra_gateway"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    path: str  # "" or a prefix without trailing slash, e.g. "/alephant"


def _parse_one(url: str) -> _Origin:
    raw = url.strip()
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"gateway URL {raw!r} must start with http:// or https:// (for example https://ai.alephant.io)"
        )
    if not parts.hostname:
        raise ValueError(f"gateway URL {raw!r} has no host")
    if parts.username or parts.password:
        raise ValueError(f"gateway URL {raw!r} must not contain credentials")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"gateway URL {raw!r} has an invalid port") from exc
    path = parts.path.rstrip("/")
    # The OpenAI-style base URL usually ends in /v1: the gateway is the origin.
    if path.endswith("/v1"):
        path = path[:-3]
    return _Origin(scheme, ip_literal(_ascii_host(parts.hostname.lower().rstrip("."))), port, path)


@functools.lru_cache(maxsize=256)
def _canonical_ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.partition("%")[0] if ":" in host else host))
    except ValueError:
        return host


def ip_literal(host: str) -> str:
    """An IP-literal host in its one canonical form (``0:0:0:0:0:0:0:1`` -> ``::1``); any other host as is.

    Cheap for names: only a host with ``:`` (IPv6) or ending in a digit (IPv4)
    is parsed, and each distinct one once.
    """
    if ":" in host or host[-1:].isdigit():
        return _canonical_ip(host)
    return host


def _ascii_host(host: str) -> str:
    """An internationalised host name in its IDNA (punycode) form, as httpx encodes it for the wire.

    Requests are matched on that form (``URL.raw_host``): httpx and httpx2
    decode punycode back to Unicode in ``URL.host`` under different rules.
    """
    if host.isascii():
        return host
    try:
        import idna  # a dependency of httpx and httpx2
    except ImportError:  # pragma: no cover - no httpx, so no request to match either
        return host.encode("idna").decode("ascii")
    try:
        return str(idna.encode(host).decode("ascii"))
    except idna.IDNAError as exc:
        raise ValueError(f"gateway host {host!r} is not a valid internationalised host name") from exc


def parse_gateway_urls(value: str | Iterable[str]) -> tuple[str, ...]:
    """Validate gateway URLs (a comma-separated string or an iterable).

    Raises:
        ValueError: A URL has no http(s) scheme, no host, credentials, or a bad port.
    """
    urls = [u for u in (value.split(",") if isinstance(value, str) else value) if u.strip()]
    if not urls:
        raise ValueError("at least one gateway URL is required")
    for url in urls:
        _parse_one(url)
    return tuple(u.strip() for u in urls)


_SEEN_KEEP: Final = 1024


class GatewayMatcher:
    """Decides, per request URL, whether it goes to a configured gateway."""

    def __init__(self, urls: Iterable[str]) -> None:
        self._origins = tuple(_parse_one(u) for u in urls)
        # (scheme, host, port) -> path prefixes; lookups per request are one dict hit.
        self._by_origin: dict[tuple[str, str, int], tuple[str, ...]] = {}
        for o in self._origins:
            key = (o.scheme, o.host, o.port)
            self._by_origin[key] = (*self._by_origin.get(key, ()), o.path)
        #: ``_matches_own``, remembered per (scheme, host, port, path): a client calls a few URLs
        #: over and over, and judging one (host normalised, IP literals parsed, path prefixes
        #: tried) cost ten times the lookup.
        self._own = functools.lru_cache(maxsize=_SEEN_KEEP)(self._matches_own)

    @property
    def urls(self) -> tuple[str, ...]:
        """The configured gateway origins, normalised."""
        return tuple(
            f"{o.scheme}://{f'[{o.host}]' if ':' in o.host else o.host}:{o.port}{o.path}" for o in self._origins
        )

    def matches(self, scheme: str, host: str, port: int | None, path: str) -> bool:
        """Whether a request to these URL parts goes to the gateway (or to an extra one)."""
        if self._own(scheme, host, port, path):
            return True
        extra = _extra
        return bool(extra) and any(m._matches_own(scheme, host, port, path) for m in extra)

    def _matches_own(self, scheme: str, host: str, port: int | None, path: str) -> bool:
        scheme = scheme.lower()
        prefixes = self._by_origin.get(
            (scheme, ip_literal(host.lower().rstrip(".")), port if port is not None else _DEFAULT_PORTS.get(scheme, -1))
        )
        if prefixes is None:
            return False
        return any(not p or path == p or path.startswith(p + "/") for p in prefixes)


# Gateways added for a while by a test helper (the ``alephant_gateway`` fixture). They are
# gateways whatever ``configure()`` is told meanwhile: the code under test configures itself
# (with the default URL, its environment or its own provider) and its calls to the emulator
# must still get the headers. Only the helper that added one removes it.
_extra: tuple[GatewayMatcher, ...] = ()


def add_extra_gateway(url: str) -> GatewayMatcher:
    """Make ``url`` a gateway, in addition to the configured ones, until :func:`remove_extra_gateway`.

    Raises:
        ValueError: ``url`` is not a valid gateway URL.
    """
    global _extra  # noqa: PLW0603 - a tuple, swapped whole: readers never see it half-built
    matcher = GatewayMatcher(parse_gateway_urls(url))
    _extra = (*_extra, matcher)
    return matcher


def remove_extra_gateway(matcher: GatewayMatcher) -> None:
    """Undo one :func:`add_extra_gateway` (a matcher no longer added is ignored)."""
    global _extra  # noqa: PLW0603
    _extra = tuple(m for m in _extra if m is not matcher)
