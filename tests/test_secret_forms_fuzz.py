"""Issue 36: generated token-shaped values and secret ``name=value`` pairs never survive export.

Tokens are drawn in each documented form (JWT, AWS key ids, GitHub, GitLab, Slack, Google,
Stripe, Hugging Face, PEM blocks, URL passwords, Azure keys and signatures, OAuth codes) with
random bodies; pairs take a secret name (random case, ``-``/``_``) and a value with punctuation
inside (brackets, ``=``, ``:``, ``#``, ``?``, ``@``, ``%``...), digits alone, or, for a passphrase,
words with spaces. Each is put in a random context and into every string of a span (name,
attribute, event name and attributes, link attributes, status); 10,000 examples through the
export-time scrubber, and nothing of the secret may be left.

Unquoted values end, by the documented rule, at whitespace, ``&``, ``;``, a quote or a
backslash escape: generated unquoted values hold none of those (JSON and repr carriers do).
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, Status, StatusCode

from alephant_otel.export._scrubexport import scrub_span

pytestmark = pytest.mark.slow

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
B32 = string.ascii_uppercase + "234567"
#: Punctuation an unquoted value may hold (not whitespace, ``&``, ``;``, quotes or ``\\``).
PUNCT = "!#$%()*+,-./:<=>?@[]^_`{|}~"
NAMES = [
    "password", "passwd", "pwd", "db.password", "DB_PASSWORD", "api_key", "x-api-key", "apikey", "client_secret",
    "access_token", "refresh_token", "otp_token", "auth_token", "token", "secret", "key", "sig", "private_key",
    "AccountKey", "SharedAccessKey", "credentials", "jwt", "subscription-key", "session_cookie",
]  # fmt: skip
LINE_NAMES = ["passphrase", "pass_phrase", "seed-phrase", "mnemonic"]
#: The end of every generated value: a value cut short at punctuation or a space leaves it behind.
TAIL = "Zq7Zq7"


def _text(chars: str, lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(chars, min_size=lo, max_size=hi)


@st.composite
def tokens(draw: st.DrawFn) -> tuple[str, str]:
    """(a token-shaped credential, the part that must not survive)."""
    kind = draw(st.integers(0, 12))
    if kind == 0:
        header, payload = draw(_text(B64URL, 8, 40)), draw(_text(B64URL, 8, 80))
        sig = draw(_text(B64URL, 0, 60))
        token = f"eyJ{header}.eyJ{payload}" + (f".{sig}" if sig or draw(st.booleans()) else "")
        return token, f"eyJ{payload}"
    if kind == 1:
        token = draw(st.sampled_from(["AKIA", "ASIA", "ABIA", "ACCA", "A3TX"])) + draw(_text(B32, 16, 16))
        return token, token
    if kind == 2:
        prefix = draw(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]))
        token = prefix + draw(_text(ALNUM, 36, 40))
        return token, token
    if kind == 3:
        token = "github_pat_" + draw(_text(ALNUM + "_", 22, 82))
        return token, token
    if kind == 4:
        token = draw(st.sampled_from(["glpat-", "gldt-", "glrt-"])) + draw(_text(B64URL, 20, 40))
        return token, token
    if kind == 5:
        token = draw(st.sampled_from(["xoxa-", "xoxb-", "xoxp-", "xoxr-"])) + draw(_text(ALNUM + "-", 10, 50))
        return token, token
    if kind == 6:
        token = "AIza" + draw(_text(B64URL, 35, 35))
        return token, token
    if kind == 7:
        token = draw(st.sampled_from(["sk_live_", "rk_test_", "sk_prod_"])) + draw(_text(ALNUM, 10, 40))
        return token, token
    if kind == 8:
        body = draw(_text(B64, 16, 64))
        label = draw(st.sampled_from(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "]))
        end = draw(st.sampled_from(["", f"\n-----END {label}PRIVATE KEY-----"]))  # a block cut short too
        return f"-----BEGIN {label}PRIVATE KEY-----\n{body}{end}", body
    if kind == 9:
        pw = "Q" + draw(_text(ALNUM + "-._~!$()*+,=%:@", 6, 30)) + "9"
        scheme = draw(st.sampled_from(["postgres", "postgresql", "mysql", "redis", "amqp", "https", "mongodb+srv"]))
        user = draw(_text(ALNUM + "-_.", 0, 12))
        host = draw(st.sampled_from(["db.internal", "localhost", "10.0.0.5", "[::1]", "api.example.test"]))
        tail = draw(st.sampled_from(["", ":5432", ":5432/main", "/v1/items?x=1", "/acme/app.git"]))
        return f"{scheme}://{user}:{pw}@{host}{tail}", pw
    if kind == 10:
        key = draw(_text(B64, 20, 88))
        name = draw(st.sampled_from(["AccountKey", "SharedAccessKey", "sig"]))
        token = f"DefaultEndpointsProtocol=https;AccountName=acme;{name}={key}Q9;EndpointSuffix=core.windows.net"
        return token, f"{key}Q9"
    if kind == 11:
        code = "Q" + draw(_text(B64URL + ".~", 8, 40)) + "9"
        return f"https://app.example.test/cb?{draw(st.sampled_from(['', 'state=x&']))}code={code}&x=1", code
    token = "hf_" + draw(_text(string.ascii_letters, 34, 40))
    return token, token


@st.composite
def pairs(draw: st.DrawFn) -> tuple[str, str]:
    """(a secret ``name=value`` pair in one of its written forms, the value)."""
    shape = draw(st.integers(0, 3))
    if shape == 3:
        name = draw(st.sampled_from(LINE_NAMES))
        words = draw(st.lists(_text(string.ascii_lowercase, 3, 10), min_size=2, max_size=6))
        value = "Q" + " ".join(words) + f" {TAIL}9"
    else:
        name = draw(st.sampled_from(NAMES))
        if shape == 0:
            value = "Q" + draw(_text(ALNUM + PUNCT, 4, 30)) + f"{TAIL}9"
        elif shape == 1:
            value = str(draw(st.integers(100_000, 10**12)))
        else:  # anything, quoted below
            value = "Q" + draw(st.text(string.printable.strip() + " ", min_size=4, max_size=30)) + f"{TAIL}9"
    mask = draw(st.integers(0, (1 << len(name)) - 1))
    name = "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(name))
    quoted = shape == 2 or draw(st.booleans())
    if not quoted:
        form = draw(st.sampled_from(["{n}={v}", "{n}: {v}", "{n} = {v}", "--{n}={v}"]))
        return form.format(n=name, v=value), value
    form = draw(st.sampled_from(["json", "repr", "call"]))
    if form == "json":
        return json.dumps({"model": "m", name: value}), value
    if form == "repr":
        return repr({"model": "m", name: value}), value
    return f"Client({name}={value!r}, timeout=3)", value


AROUND = [
    "{}",
    "failed: {} (retrying)",
    "Traceback (most recent call last):\n  File x\nRuntimeError: {}\n",
    "'{}'",
    "({})",
    "[{}], next",
    "<{}>",
    "upstream said {}. giving up",
]
_RESOURCE = Resource.get_empty()
_CTX = SpanContext(trace_id=1, span_id=2, is_remote=False)


def _span(text: str) -> ReadableSpan:
    return ReadableSpan(
        name=f"work {text}",
        context=_CTX,
        resource=_RESOURCE,
        attributes={"app.message": text, "msgs": ("ok", text)},
        events=[Event(f"retry {text}", {"exception.message": text, "exception.stacktrace": f"Trace\n{text}\n"})],
        links=[Link(_CTX, {"app.note": text})],
        status=Status(StatusCode.ERROR, f"RuntimeError: {text}"),
    )


def _exported_strings(span: ReadableSpan) -> str:
    parts = [span.name, span.status.description or ""]
    for attrs in (span.attributes, *(e.attributes for e in span.events), *(link.attributes for link in span.links)):
        for value in (attrs or {}).values():
            parts.extend(value if isinstance(value, tuple) else [str(value)])
    parts.extend(e.name for e in span.events)
    return "\n".join(parts)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(tokens(), pairs()), st.sampled_from(AROUND))
def test_no_generated_secret_survives(carried: tuple[str, str], around: str) -> None:
    text, secret = carried
    text = around.format(text)
    out = _exported_strings(scrub_span(_span(text)))
    assert secret not in out, (text, out)
    assert TAIL not in out, (text, out)
    assert "Scrubbed due to" in out or "REDACTED" in out, out
