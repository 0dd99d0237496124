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
  take too, and the value of ``ALEPHANT_VIRTUAL_KEY``) wherever they appear;
* credentials of a known form wherever they appear (JWTs, cloud and forge
  tokens, private key blocks, URL passwords: :mod:`alephant_otel.redact._secretforms`).

A secret name makes any value secret, numbers included (``otp_token=492817``);
a value runs to its natural end (a closing quote, ``&``, ``;``, whitespace or
the end of the text; a passphrase to the end of the line); names are
percent-decoded until stable, at most 3 rounds.

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
from functools import partial
from itertools import filterfalse
from typing import Any, Final

from alephant_otel.redact._secretforms import HINTS as _FORM_HINTS
from alephant_otel.redact._secretforms import (
    LINE_VALUE,
    decode_name,
    hint_pattern,
    is_line_name,
    scrub_forms,
    sub_at,
    trim_value,
)
from alephant_otel.redact._syntax import (
    _HEADERS,
    _NAME_BACKWARDS,
    _QUERY,
    _SEP,
    _SPACES,
    _TOKENS,
    _VALUE,
    _keep_prefix,
    _mark,
)

__all__ = [
    "DEFAULT_PATTERNS",
    "ENV_SCRUB_PATTERNS",
    "redact_url",
    "scrub_attributes",
    "scrub_named",
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
    # access_token, refresh_token, x-amz-security-token; not a count (max_tokens, token_count) or a tokenizer
    r"token(?!s(?![a-z])|[-_. ]?(?:count|usage|type|limit)|i[sz])",
    r"passw(?:or)?d",
    r"pwd",
    r"pass[-_. ]?phrase",
    r"mnemonic|seed[-_. ]?phrase",
    r"(?:account|access)[-_. ]?key(?!name)",  # Azure AccountKey, SharedAccessKey (not ...KeyName)
    r"subscription[-_. ]?key",  # subscription-key, ocp-apim-subscription-key
    r"cookie",  # cookie, set-cookie
    r"credential",
    r"private[-_. ]?key",
    r"signature",
    r"jwt",
    r"[cx]srf",  # _csrf, xsrf (x-csrf-token is caught by "token")
)


#: A name that is ``key`` or ``sig``, or ends in ``-key``/``_sig``... (Google API keys, Azure SAS signatures).
_BARE_NAME: Final = r"(?:[\w.-]*[-_.])?(?:key|sig)"


_OWN_PREFIXES: Final = ("alephant.", "gen_ai.")


#: Values that hold nothing, whatever their name (a flag, an empty value). A number under a
#: secret name is a secret (a PIN, a one-time code): counts are kept out by the names above.
_INERT: Final = re.compile(r"(?i)true|false|null|none|")


#: Header lines whose value runs to the end of the line (a cookie has ``;``, AWS auth has ``,``).
_LINE_HEADERS: Final = re.compile(r"(?i)(?:proxy-)?authorization|(?:set-)?cookie")


_URL_MARK: Final = "REDACTED"


#: Lower-case substrings of which a text that holds a credential has at least one (see DEFAULT_PATTERNS
#: and the scan below: every name pattern and every bare form contains one of them).
_HINTS: Final = (
    "auth", "key", "secret", "token", "pass", "pwd", "cookie", "credential", "sig", "jwt",
    "csrf", "xsrf", "sk-", "bearer", "basic", "illegal header", "%", "mnemonic", "phrase", *_FORM_HINTS,
)  # fmt: skip


_NAME_CACHE: Final = 4096


#: The form of the ids this package makes (``_ids.new_id``): a request id is new on
#: every span. Each hint has a letter outside ``[0-9a-f]``, and none fits across the
#: prefix, so none can be in such an id: one match in C instead of the hint search
#: (~3 k instructions against ~7 k).
_OWN_ID: Final = re.compile(r"(?:req|sess|run)_[0-9a-f]{32}").fullmatch


_CLEAN_MAX_LEN: Final = 256


class _Scrubber:
    """The compiled patterns of one configuration (immutable: swapped whole when it changes)."""

    def __init__(self, extra: Sequence[str], literals: Sequence[str]) -> None:
        names = "|".join(f"(?:{p})" for p in (*DEFAULT_PATTERNS, *extra))
        self.names = re.compile(f"{names}|^{_BARE_NAME}$", re.IGNORECASE)
        lits = [x for x in literals if len(x) >= 8]
        self.tokens = _TOKENS + tuple(
            (x.lower(), re.compile("()" + re.escape(x), re.IGNORECASE), "configured key") for x in lits
        )
        # A cheap first look: most strings (methods, models, hosts, paths) have none of
        # these. Substring tests on the lower-cased text: a case-insensitive regex
        # alternation was ~12 µs per short string, these are well under 1 µs.
        self.hints = (*_HINTS, *(x.lower() for x in literals if len(x) >= 8))
        # The same substring tests in one search of the lower-cased text: a case-sensitive
        # alternation of literals costs half of 17 ``in`` tests in a Python loop.
        self._hint_search = re.compile(hint_pattern(self.hints)).search
        self.extra_hint = re.compile("|".join(f"(?:{p})" for p in extra), re.IGNORECASE) if extra else None
        #: Whether an id of this package's form is surely clean: with the default patterns
        #: only (a user's pattern or key could match one).
        self._ids_plain = not extra and not lits
        self._secret_names: dict[str, bool] = {}
        #: The names of ``_secret_names`` judged not secret, as a set: a whole span's keys are
        #: checked against it in one C-level ``issuperset`` (see scrub_attributes).
        self._plain_names: set[str] = set()
        #: Values known clean: short strings, tuples of them, and ints (attribute values).
        self._clean: dict[str | tuple[str, ...], None] = {}

    def is_secret_name(self, name: str) -> bool:
        # Attribute keys repeat span after span: each is judged once.
        known = self._secret_names.get(name)
        if known is None:
            if len(self._secret_names) >= _NAME_CACHE:
                self._secret_names.clear()
                self._plain_names.clear()
            # The package's own attributes are never blanked by name (input_tokens is a count).
            own = name.startswith(_OWN_PREFIXES)
            known = self._secret_names[name] = not own and self.names.search(name) is not None
            if not known:
                self._plain_names.add(name)
        return known

    def _query(self, m: re.Match[str]) -> str:
        name = m.group("qname")
        decoded = decode_name(name)
        if m.group("qval") not in ("", _URL_MARK) and self.names.search(decoded):
            return f"{m.group('qsep')}{name}={_URL_MARK}"
        return m.group(0)

    @staticmethod
    def _header(m: re.Match[str]) -> str:
        if m.group("illegal") is not None:
            return m.group("illegal") + _mark("header value")
        return f"{m.group(0)[: m.start('hval') - m.start()]}{_mark(m.group('hname').lower())}"

    def _pairs(self, text: str) -> str:
        out: list[str] = []
        done = 0  # text before this is in ``out``
        backwards = text[::-1]
        size = len(text)
        for sep in _SEP.finditer(text):
            at = sep.start()
            m = _NAME_BACKWARDS.match(backwards, size - at)
            if m is None or size - m.end() < done:
                continue
            name = decode_name(m.group("name")[::-1])
            if not self.is_secret_name(name):
                continue
            spaces = _SPACES.match(text, at + 1)
            begin = spaces.end() if spaces is not None else at + 1
            v = _VALUE.match(text, begin)
            if v is None:
                continue
            value = v.group(0)
            quoted = value[0] in "\"'\\" or value[:2] in ("b'", 'b"')
            if not quoted:
                if is_line_name(name):  # a passphrase: words, to the end of the line
                    v = LINE_VALUE.match(text, begin) or v
                    value = v.group(0).rstrip()
                value = trim_value(value)
            inner = value[1:] if value[:2] in ("b'", 'b"') else value
            inner = inner.strip("\"'\\")
            if _INERT.fullmatch(inner) or inner.startswith("[Scrub") or inner == _URL_MARK:
                continue
            if value.startswith('\\"'):
                new = f'\\"{_mark(name)}\\"'
            elif quoted and value[-1] in "\"'" and len(value) > 1:
                quote = value[-1]
                new = f"{value[: value.index(quote) + 1]}{_mark(name)}{quote}"
            else:
                new = _mark(name)
            out.append(text[done : v.start()])
            out.append(new)
            done = v.start() + len(value)
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)

    def text(self, value: str) -> str:
        clean = self._clean
        if value in clean:
            return value
        if self._ids_plain and _OWN_ID(value) is not None:
            plain = True
        else:  # no hint of a credential: every value not seen before is looked at here
            plain = self._hint_search(value.lower()) is None and (
                self.extra_hint is None or self.extra_hint.search(value) is None
            )
        if plain:
            # Values repeat span after span (methods, hosts, models, session ids): a
            # short one found clean is remembered, so the next span pays a dict lookup.
            if len(value) <= _CLEAN_MAX_LEN:
                if len(clean) >= _NAME_CACHE:
                    clean.clear()
                clean[value] = None
            return value
        # Each pass only where its marker is: a regular expression that has to try
        # every position costs ~0.5 µs a character, a substring test next to nothing.
        text = value
        lower = value.lower()
        if "illegal header" in lower or "authorization" in lower or "cookie" in lower:
            text = sub_at(text, ("illegal header", "authorization", "cookie"), _HEADERS, self._header)
        if "=" in text:
            text = _QUERY.sub(self._query, text)
        text = scrub_forms(text, lower if text is value else text.lower())
        if "=" in text or ":" in text:
            text = self._pairs(text)
        for marker, pattern, why in self.tokens:
            if marker in lower:
                text = sub_at(text, (marker,), pattern, partial(_keep_prefix, _mark(why)))
        return text


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


def scrub_named(name: str, attributes: Mapping[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    """A span's name, scrubbed, and :func:`scrub_attributes` of its attributes: one call per span."""
    scrubber = _current
    return name if name in scrubber._clean else scrubber.text(name), scrub_attributes(attributes)


def _scrub_value(key: str, value: Any, scrubber: _Scrubber, by_name: bool) -> Any:
    if isinstance(value, str):
        if by_name and not _INERT.fullmatch(value) and not value.startswith("[Scrub"):
            return _mark(_key_label(key))
        return scrubber.text(value)
    if by_name and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _mark(_key_label(key))  # db.password=880077665544: a number is a secret too
    if isinstance(value, (tuple, list)) and value and (by_name or isinstance(value[0], str)):
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
    if scrubber._plain_names.issuperset(attributes):
        # Nearly every span: no name is secret, so what is scrubbed depends on the values
        # alone, and only those not known clean need a look (numbers, ids seen once).
        try:
            # One pass in C: a set of the values and its difference cost ~2 k instructions
            # a span more (two passes, and a table grown twice).
            pending = [*filterfalse(scrubber._clean.__contains__, attributes.values())]
        except TypeError:  # an unhashable value (a list): judged item by item below
            pass
        else:
            return _scrub_values(attributes, pending, scrubber) if pending else None
    changed: dict[str, Any] | None = None
    clean = scrubber._clean
    by_names = scrubber._secret_names
    for key, value in attributes.items():
        by_name = by_names.get(key)
        if by_name is None:
            by_name = scrubber.is_secret_name(key)
        if not by_name and (value in clean if type(value) is str else not isinstance(value, (tuple, list))):
            continue  # the common case, in one test: a value seen clean before, or a number
        new = _scrub_value(key, value, scrubber, by_name)
        if new is not value and new != value:
            if changed is None:
                changed = dict(attributes)
            changed[key] = new
    return changed


def _scrub_values(attributes: Mapping[str, Any], pending: list[Any], scrubber: _Scrubber) -> dict[str, Any] | None:
    """:func:`scrub_attributes` for attributes with no secret name: ``pending`` holds the values to look at."""
    clean = scrubber._clean
    new_values: dict[Any, Any] | None = None
    for value in pending:
        kind = type(value)
        if kind is str:
            new = scrubber.text(value)
            if new is value:  # text() hands a clean value back as it is
                continue
        elif kind is int or kind is bool:
            # Never scrubbed by value. Remembered, so the next span skips them in C:
            # statuses, ports and small counts repeat span after span.
            if len(clean) >= _NAME_CACHE:
                clean.clear()
            clean[value] = None
            continue
        elif kind is float:
            continue  # never scrubbed by value; costs and durations rarely repeat
        else:
            new = _scrub_value("", value, scrubber, False)
        if new is not value and new != value:
            if new_values is None:
                new_values = {}
            new_values[value] = new
        elif kind is tuple and all(item in clean for item in value):
            # A tuple of short clean strings (finish reasons) repeats as they do.
            if len(clean) >= _NAME_CACHE:
                clean.clear()
            clean[value] = None
    if new_values is None:
        return None
    return {key: new_values.get(value, value) for key, value in attributes.items()}
