"""Issue 22: random credential-looking names and values never survive export.

Names come from the credential vocabulary (random case, ``-``/``_``, prefixes), values are
random token-like strings; they are put in URLs (names partly percent-encoded), header lines,
``name=value``/``name: value``/JSON/repr pairs, exception messages and stack traces, attribute
values and captured-header attributes. 10,000 examples through the span scrubber itself (cheap:
no I/O), and a smaller set end to end through a real provider, ``configure()`` and the OTLP/JSON
trace file encoding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from alephant_otel import configure
from alephant_otel.export._scrubexport import scrub_span
from alephant_otel.export._tracefile import encode_request_line

NAMES = [
    "authorization",
    "proxy-authorization",
    "api_key",
    "api-key",
    "apikey",
    "x-api-key",
    "client_secret",
    "refresh_token",
    "auth_token",
    "access_token",
    "password",
    "passwd",
    "subscription-key",
    "ocp-apim-subscription-key",
    "x-amz-security-token",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
    "secret",
    "token",
    "key",
    "github_token",
    "db_password",
]
VALUE_CHARS = "ABCDEFGHIJKLMNOPRSTUVWXYZabcdefghijklmnoprstuvwxyz0123456789._~+/=-"


@st.composite
def names(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(NAMES))
    if draw(st.booleans()):
        base = base.replace("-", "_") if draw(st.booleans()) else base.replace("_", "-")
    # One draw for the case of every letter: a draw per letter made generation the cost.
    mask = draw(st.integers(0, (1 << len(base)) - 1))
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(base))


# "Q" first and "9" last: a value is never all digits (a count, not a credential) and
# never a piece of the surrounding text.
values = st.text(VALUE_CHARS, min_size=10, max_size=40).map(lambda v: f"Q{v}9")


def _encode_some(name: str, mask: int) -> str:
    return "".join(f"%{ord(c):02X}" if mask >> i & 1 else c for i, c in enumerate(name))


@st.composite
def carriers(draw: st.DrawFn) -> tuple[str, str]:
    """(a text carrying a credential, the credential)."""
    name, value = draw(names()), draw(values)
    form = draw(st.sampled_from(["url", "header", "eq", "colon", "json", "repr", "call", "bearer"]))
    if form == "url":
        mask = draw(st.integers(0, (1 << len(name)) - 1))
        text = f"https://api.example.test/v1/x?v=1&{_encode_some(name, mask)}={quote(value, safe='')}&w=2"
    elif form == "header":
        text = f"{name}: {value}\r\nx-other: 1"
    elif form == "eq":
        text = f"{name}={value}"
    elif form == "colon":
        text = f"{name}: {value}"
    elif form == "json":
        text = json.dumps({"model": "m", name: value})
    elif form == "repr":
        text = repr({"model": "m", name: value})
    elif form == "call":
        text = f"Client({name}={value!r}, timeout=3)"
    else:
        text = f"Illegal header value b'Bearer {value}\\n'" if draw(st.booleans()) else f"Bearer {value}"
    around = draw(st.sampled_from(["{}", "failed: {} (retrying)", "Traceback:\n  File x\nRuntimeError: {}\n"]))
    return around.format(text), value


_RESOURCE = Resource.get_empty()


def _span(text: str, name: str) -> ReadableSpan:
    return ReadableSpan(
        name="work",
        resource=_RESOURCE,
        attributes={
            "app.message": text,
            f"http.request.header.{name.lower().replace('-', '_')}": (f"v {name}",),
            "msgs": ("ok", text),
        },
        events=[Event("exception", {"exception.message": text, "exception.stacktrace": f"Trace\n{text}\n"})],
        status=Status(StatusCode.ERROR, f"RuntimeError: {text}"),
    )


def _leaks(value: str, data: str) -> bool:
    return value in data or quote(value, safe="") in data


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(carriers(), names())
def test_the_scrubber_leaves_no_credential(carried: tuple[str, str], header: str) -> None:
    text, value = carried
    scrubbed = scrub_span(_span(text, header))
    data = scrubbed.to_json(indent=None)
    assert not _leaks(value, data), data
    assert f"v {header}" not in data  # a captured credential header: the whole value
    assert "Scrubbed due to" in data or "REDACTED" in data


@pytest.fixture(scope="module")
def pipeline() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    from opentelemetry import trace

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    global_provider = trace.get_tracer_provider()
    configure(tracer_provider=provider)
    yield provider, memory
    provider.shutdown()
    configure(tracer_provider=global_provider)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(carried=carriers())
def test_end_to_end_through_the_sdk_and_the_trace_file_encoding(
    carried: tuple[str, str], pipeline: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = pipeline
    text, value = carried
    memory.clear()
    with provider.get_tracer("fuzz").start_as_current_span("work") as span:
        span.set_attribute("app.message", text)
        try:
            raise RuntimeError(text)
        except RuntimeError as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
    (exported,) = memory.get_finished_spans()
    for data in (exported.to_json(indent=None), encode_request_line([exported]).decode()):
        assert not _leaks(value, data), data
