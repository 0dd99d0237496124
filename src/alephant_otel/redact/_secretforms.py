"""Credentials recognised by their form, wherever they stand in a text; and where a value ends.

:mod:`alephant_otel.redact._scrub` finds credentials by the *name* they go under
(``password=``, ``Authorization:``). A token pasted into an exception message,
a span name or a URL has no such name, but most issued credentials carry a
fixed, documented prefix or shape. This module keeps those shapes in one table
(:data:`FORMS`), each with the rule sets it was learnt from:

* gitleaks' default rules (``config/gitleaks.toml``: ``jwt``, ``aws-access-token``,
  ``github-pat`` / ``-oauth`` / ``-app-token`` / ``-refresh-token`` /
  ``-fine-grained-pat``, ``gitlab-pat``, ``slack-*-token``, ``gcp-api-key``,
  ``private-key``, ``stripe-access-token``, ``huggingface-access-token``);
* Yelp's ``detect-secrets`` plugins (``JwtTokenDetector``, ``AWSKeyDetector``,
  ``GitHubTokenDetector``, ``GitLabTokenDetector``, ``SlackDetector``,
  ``PrivateKeyDetector``, ``BasicAuthDetector`` for ``scheme://user:password@``);
* GitHub's documented token prefixes ("About authentication to GitHub": ``ghp_``,
  ``github_pat_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``);
* RFC 6749 section 4.1.2 for the OAuth authorization ``code`` parameter.

The patterns are looser than the scanners' on length (a scanner wants few
false alarms in a repository; a scrubber would rather blank a look-alike than
export a truncated or new-length token) and strict on the prefix.

Neither scanner is used as a library: ``detect-secrets`` 1.5 took ~2 ms per
short string (all plugins, entropy included) and reports no offsets to cut
at, against the few microseconds per span the exporter can spend here.

Matching costs little on clean text: :data:`HINTS` (lower-case substrings, one
of which is in every match) join the scrubber's single hint search, so a
string with none of them never reaches this module; one that has some is
matched by one compiled alternation tried only where a hint starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import unquote_plus

__all__ = [
    "FORMS",
    "HINTS",
    "LINE_VALUE",
    "decode_name",
    "hint_pattern",
    "is_line_name",
    "scrub_forms",
    "sub_at",
    "trim_value",
]


def _mark(why: str) -> str:
    return f"[Scrubbed due to {why!r}]"


#: (why, lower-case needles, pattern, source): a match starts where one of its needles does.
#: A pattern may keep a prefix in a group named ``keep_<n>``: the text before the secret that
#: gives the context (``postgres://app:``).
FORMS: Final[tuple[tuple[str, tuple[str, ...], str, str], ...]] = (
    (
        "JWT",
        ("eyj",),
        r"(?<!\w)eyJ[\w-]{8,}={0,2}\.eyJ[\w-]{8,}={0,2}(?:\.[\w+/-]*={0,2})?",
        "gitleaks jwt; detect-secrets JwtTokenDetector (base64url '{\"' is 'eyJ')",
    ),
    (
        "AWS access key id",
        ("akia", "asia", "abia", "acca", "a3t"),
        r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])",
        "gitleaks aws-access-token; detect-secrets AWSKeyDetector",
    ),
    (
        "GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})",
        "GitHub docs, token prefixes; gitleaks github-*; detect-secrets GitHubTokenDetector",
    ),
    (
        "GitLab token",
        ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glimt-", "glptt-", "glagent-", "gloas-"),
        r"(?<![A-Za-z0-9])gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-[\w-]{20,}",
        "gitleaks gitlab-pat; detect-secrets GitLabTokenDetector",
    ),
    (
        "Slack token",
        ("xox", "xapp-"),
        r"(?<![A-Za-z0-9])(?:xox[abposre]|xapp)-[A-Za-z0-9-]{8,}",
        "gitleaks slack-*-token; detect-secrets SlackDetector",
    ),
    (
        "Google API key",
        ("aiza",),
        r"(?<![A-Za-z0-9])AIza[\w-]{30,}",
        "gitleaks gcp-api-key",
    ),
    (
        "Stripe key",
        ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_"),
        r"(?<![A-Za-z0-9])[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,}",
        "gitleaks stripe-access-token; detect-secrets StripeDetector",
    ),
    (
        "Hugging Face token",
        ("hf_",),
        r"(?<![A-Za-z0-9])hf_[A-Za-z]{30,}",
        "gitleaks huggingface-access-token",
    ),
    (
        "private key",
        ("-----begin",),
        # The whole block, to its END line, or to the end of the text when it was cut.
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|.*)",
        "gitleaks private-key; detect-secrets PrivateKeyDetector",
    ),
    (
        "password in URL",
        ("://",),
        # scheme://user:password@host: only the password goes, the URL keeps its shape. The
        # password ends at the first '@' that a whole host follows, not another '@' (a raw '@'
        # or '/' in a password is common); digits then '/' are a port and a path
        # (http://h:8080/users/a@b.c), not a password.
        r"(?P<keep_url>://[^\s/?#@:'\"<>]*:)(?!\d*/)[^\s'\"<>]+?(?=@(?:\[[0-9A-Fa-f:.]+\](?!@)|[\w.%-]+(?![\w.%@-])))",
        "detect-secrets BasicAuthDetector; RFC 3986 userinfo",
    ),
    (
        "OAuth code",
        ("code=",),
        # Only as a URL query or fragment parameter, or first in a form body: "status=500
        # code=internal_error" in a message is an error code.
        r"(?P<keep_code>(?:(?<=[?&#])|^)code=)(?!REDACTED|\[Scrub)[^\s&#;'\"<>]{8,}",
        "RFC 6749 4.1.2 (authorization code in a redirect URL or form body)",
    ),
)

#: Every needle of the table: a match starts where one does.
_NEEDLES: Final = tuple(dict.fromkeys(h for _, hints, _, _ in FORMS for h in hints))
#: What the scrubber's first look searches for: the needles, but ``@`` for ``://`` (a URL
#: with a password has both, and most URLs have no ``@``).
HINTS: Final = tuple(h if h != "://" else "@" for h in _NEEDLES)
_PATTERN: Final = re.compile("|".join(f"(?P<f{i}>{p})" for i, (_, _, p, _) in enumerate(FORMS)), re.DOTALL)
_KEEP: Final = re.compile(r"\(\?P<(keep_\w+)>")


def _marks() -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for i, (why, _, pattern, _) in enumerate(FORMS):
        keep = _KEEP.search(pattern)
        out[f"f{i}"] = (_mark(why), keep.group(1) if keep else None)
    return out


#: Form group -> (the note, the group of the text to keep before it).
_MARKS: Final = _marks()


def sub_at(text: str, needles: tuple[str, ...], pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> str:
    """``pattern.sub(repl, text)``, trying ``pattern`` only where one of ``needles`` (lower case) starts.

    A pattern tried by ``sub`` at every position costs ~0.3 µs a character;
    ``str.find`` finds the few places it can match at C speed.
    """
    lower = text.lower()
    if len(lower) != len(text):  # a character whose lower case is longer: positions would not line up
        return pattern.sub(repl, text)
    starts: list[int] = []
    for needle in needles:
        at = lower.find(needle)
        while at >= 0:
            starts.append(at)
            at = lower.find(needle, at + 1)
    out: list[str] = []
    done = 0
    for at in sorted(starts):
        if at < done:
            continue
        m = pattern.match(text, at)
        if m is None:
            continue
        out.append(text[done:at])
        out.append(repl(m))
        done = m.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def hint_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, grouped by first character.

    ``a(?:uth|kia|...)|b(?:earer|asic)|...``: the engine tries one branch per
    distinct first character at each position instead of one per word
    (a flat alternation of the ~50 hints cost 2-3x as much per character).
    """
    groups: dict[str, set[str]] = {}
    for word in words:
        groups.setdefault(word[0], set()).add(word[1:])
    parts = []
    for first, rests in sorted(groups.items()):
        if "" in rests:  # the one character alone is a hint: the longer ones add nothing
            parts.append(re.escape(first))
        else:
            inner = "|".join(re.escape(r) for r in sorted(rests, key=len, reverse=True))
            parts.append(f"{re.escape(first)}(?:{inner})")
    return "|".join(parts)


_NEEDLE_AT: Final = re.compile(hint_pattern(_NEEDLES)).finditer


def _form(m: re.Match[str]) -> str:
    mark, keep = _MARKS[m.lastgroup or ""]
    return mark if keep is None else m.group(keep) + mark


def scrub_forms(text: str, lower: str) -> str:
    """``text`` with every credential of a form in :data:`FORMS` replaced by a note naming the form.

    ``lower`` is ``text.lower()``, which the caller has already made.
    """
    if len(lower) != len(text):  # a character whose lower case is longer: positions would not line up
        return _PATTERN.sub(_form, text)
    out: list[str] = []
    done = 0
    for hint in _NEEDLE_AT(lower):
        at = hint.start()
        if at < done:
            continue
        m = _PATTERN.match(text, at)
        if m is None:
            continue
        out.append(text[done:at])
        out.append(_form(m))
        done = m.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


#: Names whose unquoted value may hold spaces (``passphrase=correct horse battery staple``):
#: the value runs to the end of the line, not to the first space.
_LINE_NAME: Final = re.compile(r"(?i)pass[-_. ]?phrase|mnemonic|seed[-_. ]?phrase")
#: Such a value: to the end of the line (a real one, or ``\n`` written out in a repr).
LINE_VALUE: Final = re.compile(r"(?:[^\r\n\\]|\\(?![nr]))+")


def is_line_name(name: str) -> bool:
    """Whether an unquoted value under ``name`` runs to the end of the line."""
    return _LINE_NAME.search(name) is not None


_CLOSERS: Final = {")": "(", "]": "[", "}": "{", ">": "<"}


def _dangles(value: str) -> bool:
    """Whether the last character of ``value`` closes something opened before the value."""
    last = value[-1]
    if last == ",":
        return True
    if last in "'\"":  # the quote of the text around a passphrase
        return value.count(last) % 2 == 1
    opener = _CLOSERS.get(last)
    return opener is not None and value.count(opener) < value.count(last)


def trim_value(value: str) -> str:
    """An unquoted value without the punctuation that closes what it stands in.

    The value was read to whitespace, ``&``, ``;``, a quote or the end of the
    text, so ``password=Ab(cSECRET)`` is read whole; ``f(api_key=abc)`` and
    ``{key: abc}, ...`` end in a bracket or comma that is not the value's,
    ``'passphrase=a b c'`` in the quote around it. A closer or quote is
    dropped only when unbalanced inside the value, and trailing commas: a
    secret that really ends in one loses that character.
    """
    while value and _dangles(value):
        value = value[:-1]
    return value


def decode_name(name: str) -> str:
    """``name`` percent-decoded until stable, at most 3 rounds (``api%255Fkey`` is ``api_key``)."""
    for _ in range(3):
        if "%" not in name and "+" not in name:
            break
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name
