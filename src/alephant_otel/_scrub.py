"""Credentials out of everything telemetry exports: one scrubber, applied at export time.

Every string an exported span carries (its name, attribute values, status
description, event attributes such as ``exception.message`` and
``exception.stacktrace``) is scanned for credentials, which are replaced by a
note that says why (``[Scrubbed due to 'authorization']``), in the spirit of
Logfire's scrubber. What counts as a credential:

* an attribute whose key names one (``http.request.header.authorization``,
  ``...x_amz_security_token``, ``...set_cookie``): the whole value;
* ``name: value``, ``name=value`` and JSON/repr ``"name": "value"`` pairs in
  text whose name does; ``Authorization``/``Cookie`` header lines to their end;
* URL query parameters whose name, once percent-decoded, does
  (``?api%5Fkey=`` is ``api_key``): the value becomes ``REDACTED`` so the URL
  stays a URL;
* ``Bearer``/``Basic`` tokens, header values quoted in an ``Illegal header
  value`` error, and the gateway's key form (``sk-...``, which its virtual keys
  take too, and the value of ``ALEPHANT_VIRTUAL_KEY``) wherever they appear.

Names are matched case-insensitively by :data:`DEFAULT_PATTERNS` plus the
user's own (``configure(scrub_patterns=...)`` or ``ALEPHANT_SCRUB_PATTERNS``).
The package's own attributes (``alephant.*``, ``gen_ai.*``) are never blanked
by name (``gen_ai.usage.input_tokens`` is a count, not a token), only scanned.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote_plus

__all__ = [
    "DEFAULT_PATTERNS",
    "ENV_SCRUB_PATTERNS",
    "redact_url",
    "scrub_attributes",
    "scrub_text",
    "set_extra_patterns",
]

_log = logging.getLogger(__name__)

#: Environment variable with more credential name patterns (comma-separated regular expressions).
ENV_SCRUB_PATTERNS: Final = "ALEPHANT_SCRUB_PATTERNS"
_ENV_VIRTUAL_KEY: Final = "ALEPHANT_VIRTUAL_KEY"

#: Names (of attributes, headers, query parameters, ``name=value`` pairs) whose values are credentials.
#: Regular expressions, searched case-insensitively in the name.
DEFAULT_PATTERNS: Final[tuple[str, ...]] = (
    r"auth(?!ors?\b|ority)",  # authorization, proxy-authorization, x-auth-token, oauth; not author(s)/authority
    r"api[-_. ]?key",  # api_key, x-api-key, x-goog-api-key, apikey
    r"secret",  # client_secret
    r"token",  # access_token, refresh_token, x-amz-security-token
    r"passw(?:or)?d",
    r"pwd",
    r"passphrase",
    r"subscription[-_. ]?key",  # subscription-key, ocp-apim-subscription-key
    r"cookie",  # cookie, set-cookie
    r"credential",
    r"private[-_. ]?key",
    r"signature",
    r"jwt",
)
#: A name that is ``key`` or ``sig``, or ends in ``-key``/``_sig``... (Google API keys, Azure SAS signatures).
_BARE_NAME: Final = r"(?:[\w.-]*[-_.])?(?:key|sig)"

_OWN_PREFIXES: Final = ("alephant.", "gen_ai.")
#: Values that are never credentials, whatever their name (a token count, a flag).
_HARMLESS: Final = re.compile(r"(?i)-?\d{1,12}(?:\.\d+)?|true|false|null|none|")
#: Header lines whose value runs to the end of the line (a cookie has ``;``, AWS auth has ``,``).
_LINE_HEADERS: Final = re.compile(r"(?i)(?:proxy-)?authorization|(?:set-)?cookie")
_URL_MARK: Final = "REDACTED"


def _mark(name: str) -> str:
    return f"[Scrubbed due to {name!r}]"


# Alternatives, tried left to right at each position: a URL query parameter, an
# ``Illegal header value`` quote, a header line, a name/value pair, bare tokens.
_VALUE: Final = (
    r"(?P<value>b?\"(?:[^\"\\\r\n]|\\.)*\""  # "..." (JSON, repr)
    r"|b?'(?:[^'\\\r\n]|\\.)*'"  # '...' (repr)
    r"|\\\"(?:[^\\]|\\[^\"])*\\\""  # \"...\" (JSON inside a JSON string)
    r"|(?:(?:bearer|basic|digest|token|negotiate|apikey|aws4-hmac-sha256)\s+)?[^\s,;&'\"<>(){}\[\]\\]+)"
)
_SCAN_SOURCE: Final = (
    r"(?P<qsep>[?&;])(?P<qname>[^=&#;\s'\"<>?/]{1,100})=(?P<qval>[^&#;\s'\"<>]*)"
    r"|(?P<illegal>illegal header value\s*)(?P<ival>b?(?P<iq>['\"]).*?(?P=iq))"
    r"|(?P<hname>\b(?:proxy-)?authorization|\b(?:set-)?cookie)[ \t]*:[ \t]*(?P<hval>[^\r\n\"\\]+)"
    r"|(?P<q>\\?[\"']?)(?P<name>(?<![\w.-])(?:[\w.-]*?(?:{names})[\w.-]*|{bare})(?![\w.-]))(?P=q)[ \t]*[:=][ \t]*"
    + _VALUE
    + r"|(?P<bearer>\bbearer\s+)[A-Za-z0-9\-._~+/=]{6,}"
    r"|(?P<basic>\bbasic\s+)(?=[A-Za-z0-9+/]*[0-9+/=]|[A-Za-z0-9+/]+(?-i:[A-Z]))[A-Za-z0-9+/]{8,}={0,2}"
    r"|(?P<skey>\bsk-[A-Za-z0-9][A-Za-z0-9_\-./+=~]{7,})"
)


class _Scrubber:
    """The compiled patterns of one configuration (immutable: swapped whole when it changes)."""

    def __init__(self, extra: Sequence[str], literals: Sequence[str]) -> None:
        names = "|".join(f"(?:{p})" for p in (*DEFAULT_PATTERNS, *extra))
        self.names = re.compile(f"{names}|^{_BARE_NAME}$", re.IGNORECASE)
        lits = [re.escape(x) for x in literals if len(x) >= 8]
        literal_alt = "|(?P<lit>" + "|".join(lits) + ")" if lits else ""
        source = _SCAN_SOURCE.replace("{names}", names).replace("{bare}", _BARE_NAME)
        self.scan = re.compile(source + literal_alt, re.IGNORECASE | re.DOTALL)
        # A cheap first look: most strings (methods, models, hosts, paths) have none of these.
        hint = names + r"|key|sig|sk-|bearer|basic|illegal header|%" + ("|" + "|".join(lits) if lits else "")
        self.hint = re.compile(hint, re.IGNORECASE)

    def is_secret_name(self, name: str) -> bool:
        return self.names.search(name) is not None

    def _replace(self, m: re.Match[str]) -> str:
        group = m.lastgroup
        if m.group("qsep") is not None:
            name = m.group("qname")
            decoded = unquote_plus(name) if "%" in name or "+" in name else name
            if self.names.search(decoded) and m.group("qval") not in ("", _URL_MARK):
                return f"{m.group('qsep')}{name}={_URL_MARK}"
            return m.group(0)
        if m.group("illegal") is not None:
            return m.group("illegal") + _mark("header value")
        if m.group("hname") is not None:
            return f"{m.group(0)[: m.start('hval') - m.start()]}{_mark(m.group('hname').lower())}"
        if m.group("name") is not None:
            name = m.group("name")
            value = m.group("value")
            inner = value[1:] if value[:2] in ("b'", 'b"') else value
            inner = inner.strip("\"'\\")
            if _HARMLESS.fullmatch(inner) or inner.startswith("[Scrub"):
                return m.group(0)
            head = m.group(0)[: m.start("value") - m.start()]
            quote = value[-1] if value[-1] in "\"'" and len(value) > 1 else ""
            if value.startswith('\\"'):
                return f'{head}\\"{_mark(name)}\\"'
            if quote:
                opening = value[: value.index(quote) + 1]
                return f"{head}{opening}{_mark(name)}{quote}"
            return head + _mark(name)
        if m.group("bearer") is not None:
            return m.group("bearer") + _mark("bearer token")
        if m.group("basic") is not None:
            return m.group("basic") + _mark("basic credentials")
        if group == "skey":
            return _mark("gateway key")
        return _mark("configured key")  # lit

    def text(self, value: str) -> str:
        if self.hint.search(value) is None:
            return value
        # Twice: a replacement can reveal a pair a longer match hid (``a=b&key=...`` in a value).
        once = self.scan.sub(self._replace, value)
        return once if once == value else self.scan.sub(self._replace, once)


_lock = threading.Lock()
_extra: tuple[str, ...] = ()
_current = _Scrubber((), ())


def _env_patterns(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get(ENV_SCRUB_PATTERNS, "")
    out: list[str] = []
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        try:
            re.compile(item)
        except re.error as exc:
            _log.error("ignoring %s entry %r: not a regular expression (%s)", ENV_SCRUB_PATTERNS, item, exc)
            continue
        out.append(item)
    return tuple(out)


def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Validate user patterns (``configure(scrub_patterns=...)``).

    Raises:
        ValueError: A pattern is not a string or not a regular expression.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for p in patterns:
        if not isinstance(p, str) or not p:
            raise ValueError(f"scrub pattern {p!r} must be a non-empty string")
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"scrub pattern {p!r} is not a regular expression: {exc}") from exc
        out.append(p)
    return tuple(out)


def set_extra_patterns(patterns: Iterable[str] = (), env: Mapping[str, str] | None = None) -> None:
    """Scrub names matching ``patterns`` (and ``ALEPHANT_SCRUB_PATTERNS``) too, from now on."""
    global _extra, _current  # noqa: PLW0603 - one process-wide scrubber, swapped atomically
    env = os.environ if env is None else env
    extra = (*check_patterns(patterns), *_env_patterns(env))
    literal = env.get(_ENV_VIRTUAL_KEY, "").strip()
    with _lock:
        _extra = extra
        _current = _Scrubber(extra, (literal,) if literal else ())


def scrub_text(value: str) -> str:
    """``value`` with the credentials in it replaced by a note saying why.

    Examples:
        >>> scrub_text("Authorization: Bearer abcdef123456")
        "Authorization: [Scrubbed due to 'authorization']"
        >>> scrub_text("GET https://h/v1?api%5Fkey=s3cr3t&v=1")
        'GET https://h/v1?api%5Fkey=REDACTED&v=1'
    """
    return _current.text(value)


def redact_url(value: str) -> str:
    """Credential-like query parameters (and any other credential) out of a URL or message."""
    return _current.text(value)


def _scrub_value(key: str, value: Any, scrubber: _Scrubber, by_name: bool) -> Any:
    if isinstance(value, str):
        if by_name and not _HARMLESS.fullmatch(value) and not value.startswith("[Scrub"):
            return _mark(_key_label(key))
        return scrubber.text(value)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], str):
        items = tuple(_scrub_value(key, v, scrubber, by_name) for v in value)
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def _key_label(key: str) -> str:
    # ``http.request.header.x_api_key`` -> ``x_api_key``: the note names what was matched.
    return key.rsplit(".", 1)[-1]


def scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A scrubbed copy of ``attributes``, or None when nothing in them needed scrubbing."""
    if not attributes:
        return None
    scrubber = _current
    changed: dict[str, Any] | None = None
    for key, value in attributes.items():
        by_name = not key.startswith(_OWN_PREFIXES) and scrubber.is_secret_name(key)
        if not by_name and not isinstance(value, (str, tuple, list)):
            continue
        new = _scrub_value(key, value, scrubber, by_name)
        if new is not value and new != value:
            if changed is None:
                changed = dict(attributes)
            changed[key] = new
    return changed
