"""Fuzzing the three places outside data enters: the API, inbound baggage, response bodies.

Each target runs ``EXAMPLES`` hypothesis examples in the normal set and
``SLOW_EXAMPLES`` (at least 10,000) in the ``slow`` set, counts crashes,
invalid header values and mismatches explicitly, and prints one line per
target (``fuzz <target>: N examples, 0 crashes, 0 invalid header values, ...``)
for the README's figures.

Header values are checked twice: in process (``gateway_headers()`` and the
exact bytes the request hook hands to the HTTP/1.1 layer, through a recording
connection pool, validated with h11's own field-value rule and with the
package's stricter visible-ASCII rule), and on the wire: a real loopback
request to the gateway emulator, whose recorded headers must round-trip equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import h11
import httpcore
import httpcore2
import httpx
import httpx2
import pytest
from h11._abnf import field_value as H11_FIELD_VALUE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import attach_carrier, current, gateway_headers, run, session
from alephant_otel._impossible import MAX_TOKENS
from alephant_otel.context import _state
from alephant_otel.record._acc import ParsedResponse
from alephant_otel.record._usage import parse_response
from alephant_otel.testing import GatewayEmulator
from alephant_otel.wire._watch import HEAD_BYTES, TAIL_BYTES, WHOLE_LIMIT, BodyWatcher, watch_stream

#: Examples per target in the normal set; the slow-marked variants run SLOW_EXAMPLES.
EXAMPLES = 200
SLOW_EXAMPLES = 10_000

examples = pytest.mark.parametrize(
    "n", [EXAMPLES, pytest.param(SLOW_EXAMPLES, marks=pytest.mark.slow)], ids=["fast", "slow"]
)

EMBED_MODEL = "openai/text-embedding-3-small"  # priced: no "no price" warning
EMBED_BODY = {"model": EMBED_MODEL, "input": "fuzz"}
FAKE_EMBEDDINGS = (
    b'{"object": "list", "model": "text-embedding-3-small", "data": [],'
    b' "usage": {"prompt_tokens": 1, "total_tokens": 1}}'
)

# --- the rules, restated independently of src/alephant_otel/context/_validate.py ---------------------------

LIMITS = {"id": 256, "name": 256, "path": 1024}
_ID = re.compile(r"[!-~]+")
_NAME = re.compile(r"[!-~](?:[ -~]*[!-~])?")
_H11_VALUE = re.compile(H11_FIELD_VALUE.encode("ascii"))
_VISIBLE_BYTES = re.compile(rb"[!-~](?:[ -~]*[!-~])?")
_REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")

HEADER_KIND = {
    "alephant-session-id": "id",
    "alephant-session-name": "name",
    "alephant-session-path": "path",
    "alephant-agent-id": "id",
    "alephant-run-id": "id",
    "x-request-id": "id",
}
BAGGAGE_HEADER = {
    "alephant.session.id": "alephant-session-id",
    "alephant.session.name": "alephant-session-name",
    "alephant.session.path": "alephant-session-path",
    "alephant.agent.id": "alephant-agent-id",
    "alephant.run.id": "alephant-run-id",
}
BAGGAGE_KIND = {
    "alephant.session.id": "id",
    "alephant.session.name": "name",
    "alephant.session.path": "path",
    "alephant.agent.id": "id",
    "alephant.run.id": "id",
    "alephant.run.parent_id": "id",
}


def valid(kind: str, value: object) -> bool:
    """README: visible ASCII (names may contain inner spaces); 256 characters, 1024 for paths."""
    if not isinstance(value, str) or not 1 <= len(value) <= LIMITS[kind]:
        return False
    return (_NAME if kind == "name" else _ID).fullmatch(value) is not None


# --- counting -------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one target saw; failures are counted, then raised so hypothesis shrinks them."""

    target: str
    examples: int = 0
    crashes: int = 0
    invalid: int = 0
    mismatches: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def bump(self, key: str, by: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + by

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.mismatches += 1
            raise AssertionError(what)

    def header_ok(self, name: str, value: bytes | str) -> None:
        """A header value as sent: h11's RFC 9110 rule for every header, visible ASCII for ours."""
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        ok = _H11_VALUE.fullmatch(raw) is not None
        kind = HEADER_KIND.get(name.lower())
        if kind is not None:
            ok = ok and _VISIBLE_BYTES.fullmatch(raw) is not None and len(raw) <= LIMITS[kind]
            ok = ok and (kind == "name" or b" " not in raw)
        if not ok:
            self.invalid += 1
            raise AssertionError(f"invalid header value on the wire: {name}: {raw!r}")

    @contextlib.contextmanager
    def example(self) -> Iterator[None]:
        self.examples += 1
        try:
            yield
        except AssertionError:
            raise
        except Exception:
            self.crashes += 1
            raise

    def line(self) -> str:
        extra = "".join(f", {v} {k}" for k, v in sorted(self.extra.items()))
        return (
            f"fuzz {self.target}: {self.examples} examples, {self.crashes} crashes, "
            f"{self.invalid} invalid header values, {self.mismatches} mismatches{extra}"
        )


@contextlib.contextmanager
def tallied(target: str, n: int, report_line: Callable[[str], None]) -> Iterator[Tally]:
    tally = Tally(target)
    try:
        yield tally
    finally:
        report_line(tally.line())
    assert (tally.crashes, tally.invalid, tally.mismatches) == (0, 0, 0)
    assert tally.examples >= n


def run_given(n: int, strategy: Any, test: Any) -> None:
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(strategy)
    def prop(value: Any) -> None:
        test(value)

    prop()


class LogCounter(logging.Handler):
    """Records the alephant_otel log records at ``level`` and above."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("alephant_otel: dropped an impossible"):  # bad data, not a crash
            self.records.append(record)

    def crashed(self, tally: Tally) -> None:
        """A record here means an internal-error guard caught an exception: a crash it hid."""
        if self.records:
            tally.crashes += 1
            record = self.records[0]
            self.records.clear()
            raise AssertionError(f"internal error logged: {record.getMessage()} {record.exc_info!r}")


@contextlib.contextmanager
def _log_counter(level: int) -> Iterator[LogCounter]:
    handler = LogCounter(level)
    logger = logging.getLogger("alephant_otel")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level, logger.getEffectiveLevel()))
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@pytest.fixture
def alephant_log() -> Iterator[LogCounter]:
    """alephant_otel warnings and errors."""
    with _log_counter(logging.WARNING) as handler:
        yield handler


@pytest.fixture
def internal_log() -> Iterator[LogCounter]:
    """Everything alephant_otel logs, debug included (the parser's guard logs at debug after the first)."""
    with _log_counter(logging.DEBUG) as handler:
        yield handler


# --- clients whose sent header bytes are recorded ----------------------------------------------------


class RecordingPool:
    """Stands in for a transport's connection pool: records the exact header bytes handed to h11.

    With ``inner`` the request goes on to the real pool (loopback); without,
    it is answered in process (still after h11 has validated the headers).
    """

    def __init__(self, inner: Any = None, response: Any = None) -> None:
        self._inner = inner
        self._response = response
        self.sent: list[list[tuple[bytes, bytes]]] = []

    def handle_request(self, request: Any) -> Any:
        headers = [(bytes(k), bytes(v)) for k, v in request.headers]
        self.sent.append(headers)
        if self._inner is not None:
            return self._inner.handle_request(request)
        # What h11 does before a byte goes out: raises LocalProtocolError on a bad name or value.
        h11.Request(method=request.method, target=request.url.target, headers=headers)
        return self._response()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    def __enter__(self) -> RecordingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fake_httpx() -> httpcore.Response:
    return httpcore.Response(200, headers=[(b"content-type", b"application/json")], content=FAKE_EMBEDDINGS)


def _fake_httpx2() -> httpcore2.Response:
    return httpcore2.Response(200, headers=[(b"content-type", b"application/json")], content=FAKE_EMBEDDINGS)


@dataclass
class Clients:
    """Shared clients: real loopback (httpx, httpx2) and in-process (httpx, httpx2), all recorded."""

    url: str
    wire: list[tuple[Any, RecordingPool]]
    local: list[tuple[Any, RecordingPool]]


@pytest.fixture
def clients(gateway: GatewayEmulator) -> Iterator[Clients]:
    made: list[tuple[Any, RecordingPool]] = []
    for module, fake in ((httpx, None), (httpx2, None), (httpx, _fake_httpx), (httpx2, _fake_httpx2)):
        client = module.Client(timeout=30)
        inner = None if fake is not None else client._transport._pool
        pool = RecordingPool(inner, fake)
        client._transport._pool = pool
        made.append((client, pool))
    try:
        yield Clients(gateway.url, made[:2], made[2:])
    finally:
        for client, _ in made:
            client.close()


def sent_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


# === a. ids, names and paths through the API ===========================================================

VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
NASTY = st.sampled_from([
    "\r", "\n", "\r\n", "\t", "\x00", "\x7f", " ", "\x0b", "\x0c", "\x1b", "\x85", "\xa0", "\xe9", "\u2028",
    "\ufeff", "\u200b", "\U0001f600", "\udc80", "\r\nX-Injected: 1",
])
ODD = st.sampled_from([
    "", " ", " a", "a ", "a  b", "%0d%0a", "=?utf-8?q?x?=", "a:b", "a,b", '"q"', "a;b=c", "sess_1", "/support/refund",
    "Refund for order 1042", "-", "\\", "a\\r\\nb",
])


def api_values(kind: str) -> st.SearchStrategy[Any]:
    limit = LIMITS[kind]
    fill = PRINTABLE if kind == "name" else VISIBLE
    return st.one_of(
        st.text(VISIBLE, min_size=1, max_size=24),
        st.text(PRINTABLE, max_size=24),
        st.text(max_size=24),
        st.builds(lambda a, c, b: a + c + b, st.text(VISIBLE, max_size=12), NASTY, st.text(VISIBLE, max_size=12)),
        st.builds(lambda n, c, edge: edge + c * max(n - 2, 0) + edge, st.integers(limit - 3, limit + 3), fill,
                  st.sampled_from(["x", "x", " ", "\xe9"])),
        ODD,
        st.one_of(st.integers(), st.binary(max_size=4), st.floats(), st.just(["id"])),
    )


api_inputs = st.fixed_dictionaries({
    "session_id": st.none() | api_values("id"),
    "name": st.none() | api_values("name"),
    "path": st.none() | api_values("path"),
    "run_id": st.none() | api_values("id"),
    "agent_id": st.none() | api_values("id"),
    "run_name": st.none() | api_values("name"),
    "request_id": st.none() | api_values("id"),
})


def _try(tally: Tally, call: Any, fields: dict[str, tuple[str, object]]) -> Any:
    """Call the API; a ValueError must name an invalid field, acceptance needs all valid."""
    bad = {f for f, (kind, v) in fields.items() if v is not None and not valid(kind, v)}
    try:
        result = call()
    except ValueError as exc:
        named = str(exc).split(" ", 1)[0]
        tally.expect(bool(bad), f"valid input rejected: {fields!r}: {exc}")
        tally.expect(named in bad, f"ValueError names {named!r}, not one of {sorted(bad)}: {exc}")
        tally.bump("rejected")
        return None
    tally.expect(not bad, f"invalid input accepted: {sorted(bad)} in {fields!r}")
    tally.bump("accepted")
    return result


@examples
def test_api_values_are_rejected_or_sent_intact(
    n: int, clients: Clients, gateway: GatewayEmulator, spans: InMemorySpanExporter,
    report_line: Callable[[str], None],
) -> None:
    """Arbitrary text as session/run ids, names, paths, request ids: a ValueError naming the field, or
    accepted and sent byte for byte; every example over the in-process transport, every other one
    also over real loopback HTTP to the emulator."""
    with tallied("api", n, report_line) as tally:

        def one(v: dict[str, Any]) -> None:
            with tally.example():
                example(v)

        def example(v: dict[str, Any]) -> None:
            sess = _try(tally, lambda: session(v["session_id"], name=v["name"], path=v["path"]),
                        {"session_id": ("id", v["session_id"]), "name": ("name", v["name"]),
                         "path": ("path", v["path"])})
            rn = _try(tally, lambda: run(v["run_id"], agent_id=v["agent_id"], name=v["run_name"]),
                      {"run_id": ("id", v["run_id"]), "agent_id": ("id", v["agent_id"]),
                       "name": ("name", v["run_name"])})
            with contextlib.ExitStack() as stack:
                s = stack.enter_context(sess) if sess is not None else None
                r = stack.enter_context(rn) if rn is not None else None
                expected: dict[str, str] = {}
                if s is not None:
                    expected["alephant-session-id"] = s.session_id
                    tally.expect(v["session_id"] in (None, s.session_id), "session id changed")
                    for key, header in (("name", "alephant-session-name"), ("path", "alephant-session-path")):
                        if v[key] is not None:
                            expected[header] = v[key]
                if r is not None:
                    expected["alephant-run-id"] = r.run_id
                    tally.expect(v["run_id"] in (None, r.run_id), "run id changed")
                    if v["agent_id"] is not None:
                        expected["alephant-agent-id"] = v["agent_id"]
                got = _try(tally, lambda: gateway_headers(request_id=v["request_id"]),
                           {"request_id": ("id", v["request_id"])})
                if got is not None:
                    for name, value in got.items():
                        tally.header_ok(name, value)
                    httpx.Headers(got).raw  # noqa: B018 - httpx encodes them without complaint
                    rid = got.pop("x-request-id")
                    tally.expect(rid == v["request_id"] or (v["request_id"] is None and _REQUEST_ID.fullmatch(rid)
                                                            is not None), f"x-request-id {rid!r}")
                    tally.expect({k.lower(): x for k, x in got.items()} == expected,
                                 f"gateway_headers() {got!r} != {expected!r}")
                send(tally, clients, gateway, spans, expected, on_wire=tally.examples % 2 == 0)

        run_given(n, api_inputs, one)


def send(tally: Tally, clients: Clients, gateway: GatewayEmulator, spans: InMemorySpanExporter,
         expected: dict[str, str], *, on_wire: bool) -> None:
    """One gateway request in the current context; the sent headers must be exactly ``expected``."""
    pick = tally.examples // 2 % 2  # httpx and httpx2 in turn
    client, pool = (clients.wire if on_wire else clients.local)[pick]
    spans.clear()
    gateway.clear()
    response = client.post(clients.url + "/v1/embeddings", json=EMBED_BODY, headers={"x-fuzz": "1"})
    tally.expect(response.status_code == 200, f"status {response.status_code}")
    raw = pool.sent[-1]
    pool.sent.clear()
    for name, value in raw:
        tally.header_ok(name.decode("latin-1"), value)
    sent = sent_map(raw)
    ours = {k: x for k, x in sent.items() if k in HEADER_KIND and k != "x-request-id"}
    tally.expect(ours == expected, f"sent {ours!r} != {expected!r}")
    tally.expect(_REQUEST_ID.fullmatch(sent.get("x-request-id", "")) is not None, "no x-request-id sent")
    # The gateway never gets alephant baggage: it has the same ids as headers.
    entries = [e.split("=", 1)[0].strip() for e in sent.get("baggage", "").split(",") if e.strip()]
    tally.expect(not any(unquote_plus(k).startswith("alephant.") for k in entries), f"baggage sent: {sent}")
    found = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]
    tally.expect(len(found) == 1, f"{len(found)} request spans")
    span = found[0]
    tally.expect(span.attributes.get("alephant.request.id") == sent["x-request-id"], "request span id")
    for attr, header in BAGGAGE_HEADER.items():
        tally.expect(span.attributes.get(attr) == expected.get(header), f"span {attr} {span.attributes!r}")
    if on_wire:
        tally.bump("sent on the wire")
        (recorded,) = gateway.requests
        seen = {k: recorded.headers.get(k) for k in HEADER_KIND}
        want = {**dict.fromkeys(HEADER_KIND), **expected, "x-request-id": sent["x-request-id"]}
        tally.expect(seen == want, f"the gateway saw {seen!r}, not {want!r}")


# === b. inbound baggage ===========================================================================

AKEYS = list(BAGGAGE_KIND)
baggage_values = st.one_of(
    st.text(VISIBLE, min_size=1, max_size=20),
    st.text(max_size=20).map(lambda s: quote(s, safe="")),
    st.text(max_size=20).map(quote_plus),
    st.text(max_size=20),
    st.lists(st.sampled_from([
        "%0D", "%0A", "%0d%0a", "%00", "%7F", "%20", "+", "%2B", "%C3%A9", "%E2%80%A8", "%FF", "%ED%B2%80", "%",
        "%zz", "%2", "a", "Z", "-", "=", ";", ",", " ", "\t", '"', "%3B", "%2C", "%3D", "%09", "%25",
    ]), max_size=12).map("".join),
    st.builds(lambda n, c: c * n, st.integers(200, 1100), st.sampled_from(["v", "%41", "a+b"])),
)
baggage_props = st.lists(
    st.sampled_from([";prop=1", ";flag", "; p = v", ";%0d=%0a", ";;", ";=x", ";alephant.run.id=x"]), max_size=3
).map("".join)
baggage_keys = st.one_of(
    st.sampled_from(AKEYS),
    st.sampled_from(AKEYS),
    st.sampled_from(AKEYS).map(lambda k: quote(k, safe="").replace(".", "%2E")),
    st.sampled_from(AKEYS).map(lambda k: k.upper()),
    st.sampled_from(["userId", "tenant", "alephant.other", "alephant.", " alephant.run.id"]),
    st.text(VISIBLE, min_size=1, max_size=10),
)
baggage_entry = st.builds(
    lambda k, eq, v, p: f"{k}{eq}{v}{p}", baggage_keys, st.sampled_from(["=", "=", " = ", "==", ""]),
    baggage_values, baggage_props,
)
baggage_headers = st.one_of(
    st.text(max_size=200),
    st.builds(lambda entries, sep: sep.join(entries), st.lists(baggage_entry, max_size=30),
              st.sampled_from([",", ", ", " ,", ",,"])),
    st.builds(lambda n, key, value: ",".join(f"k{i}=v{i}" for i in range(n)) + f",{key}={value}",
              st.integers(100, 300), st.sampled_from(AKEYS), baggage_values),
    st.builds(lambda n, key, values: ",".join(f"{key}={v}" for v in values * n),
              st.integers(1, 50), st.sampled_from(AKEYS), st.lists(baggage_values, min_size=1, max_size=3)),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
)
inbound = st.fixed_dictionaries({
    "baggage": baggage_headers,
    "traceparent": st.none() | st.sampled_from([
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-zz-1", "ff-" + "0" * 50]),
    "extract": st.sampled_from(["global", "w3c", "carrier"]),
})


@examples
def test_inbound_baggage_never_breaks_a_request(
    n: int, clients: Clients, gateway: GatewayEmulator, spans: InMemorySpanExporter,
    alephant_log: LogCounter, report_line: Callable[[str], None], caplog: pytest.LogCaptureFixture,
) -> None:
    """Arbitrary and near-valid W3C ``baggage`` headers, extracted by OpenTelemetry (global
    propagator, the W3C propagator, ``attach_carrier``), then a gateway request in that context:
    it goes out, with exactly the valid alephant values as headers, and each invalid alephant key
    is dropped with one warning, never again on the next request."""
    w3c = W3CBaggagePropagator()
    # OpenTelemetry's own warnings about malformed entries (each quoting the entry) are not ours to count.
    caplog.set_level(logging.ERROR, logger="opentelemetry.baggage.propagation")
    with tallied("baggage", n, report_line) as tally:

        def one(v: dict[str, Any]) -> None:
            with tally.example():
                example(v)

        def example(v: dict[str, Any]) -> None:
            carrier = {"baggage": v["baggage"]}
            if v["traceparent"] is not None:
                carrier["traceparent"] = v["traceparent"]
            # A fresh process as far as the once-per-key warnings and the derived-state cache go.
            _state._warned_keys.clear()
            _state.clear_cache()
            alephant_log.records.clear()
            with contextlib.ExitStack() as stack:
                if v["extract"] == "carrier":
                    stack.enter_context(attach_carrier(carrier))
                else:
                    ctx = propagate.extract(carrier) if v["extract"] == "global" else w3c.extract(carrier)
                    token = otel_context.attach(ctx)
                    stack.callback(otel_context.detach, token)
                entries = baggage.get_all()
                expected = {BAGGAGE_HEADER[k]: x for k, x in entries.items()
                            if k in BAGGAGE_HEADER and valid(BAGGAGE_KIND[k], x)}
                dropped = {k for k, x in entries.items() if k in BAGGAGE_KIND and not valid(BAGGAGE_KIND[k], x)}
                if dropped:
                    tally.bump("examples with invalid alephant values")
                send(tally, clients, gateway, spans, expected, on_wire=tally.examples % 5 == 0)
                first = list(alephant_log.records)
                again = {k.lower(): x for k, x in gateway_headers().items() if k != "x-request-id"}
                send(tally, clients, gateway, spans, expected, on_wire=False)
                tally.expect(again == expected, f"gateway_headers() {again!r} != {expected!r}")
                cur = current()
                tally.expect(cur.session_id == expected.get("alephant-session-id"), f"current() {cur!r}")
                tally.expect(cur.run_id == expected.get("alephant-run-id"), f"current() {cur!r}")
            internal = [r for r in alephant_log.records if "dropping baggage entry" not in r.getMessage()]
            if internal:
                tally.crashes += 1
                raise AssertionError(f"internal error logged: {internal[0].getMessage()}")
            warned = [r.args[0] for r in first]  # type: ignore[index]
            tally.expect(sorted(warned) == sorted(dropped), f"warned {warned}, dropped {sorted(dropped)}")
            tally.expect(len(alephant_log.records) == len(first), "warned again on the next request")
            tally.bump("drop warnings", len(first))

        run_given(n, inbound, one)


# === c. response bodies and streams through the usage parser and the body watcher =====================

TOKEN_MAX = MAX_TOKENS


def counted(value: object) -> int | None:
    """What a token count field should read as: non-negative ints (not bools) up to 10**9."""
    return value if type(value) is int and 0 <= value <= TOKEN_MAX else None  # type: ignore[return-value]


token_values = st.one_of(
    st.integers(0, 100_000),
    st.integers(0, 100_000),
    st.integers(-(2**70), 2**70),
    st.sampled_from([TOKEN_MAX, TOKEN_MAX + 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.sampled_from(["n", "tokens"]), st.integers(), max_size=2),
)
#: Field names the parser looks at, so junk lands where it is read.
FIELD_NAMES = st.sampled_from([
    "type", "content", "refusal", "message", "index", "finish_reason", "stop_reason", "stop_details", "usage",
    "error", "code", "delta", "response", "output", "choices", "model", "id", "object", "incomplete_details",
    "reason", "explanation", "category", "text",
])
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.sampled_from(["refusal", "message", "response.completed", "content_filter", "error", "response"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES | st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
maybe_junk = st.one_of(st.just(None), st.just(None), junk)  # None: keep the realistic value
# The nested shapes the parser walks (choices, Responses output, Anthropic stop details), with junk inside.
chat_choices = st.lists(st.fixed_dictionaries({
    "index": st.integers(0, 3) | junk,
    "finish_reason": st.sampled_from(["stop", "length", "content_filter", "refusal"]) | junk,
    "message": st.fixed_dictionaries({"role": st.just("assistant"), "content": junk, "refusal": junk}) | junk,
}), max_size=3) | junk
responses_output = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["message", "reasoning"]) | junk,
    "content": st.lists(st.fixed_dictionaries({
        "type": st.sampled_from(["output_text", "refusal"]) | junk, "refusal": junk, "text": junk,
    }) | junk, max_size=3) | junk,
}) | junk, max_size=3) | junk
stop_details = st.fixed_dictionaries({"type": st.just("refusal"), "category": junk, "explanation": junk}) | junk


def _pick(real: Any, fuzzed: Any) -> Any:
    return real if fuzzed is None else fuzzed


@st.composite
def usage_bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, int | None]]:
    """A realistic JSON body (OpenAI chat / Responses / Anthropic message) with fuzzed usage and fields.

    Returns (kind, body, expected token counts).
    """
    t = {k: draw(token_values) for k in ("input", "output", "cached", "write", "reasoning")}
    kind = draw(st.sampled_from(["chat", "responses", "anthropic"]))
    model, rid = draw(maybe_junk), draw(maybe_junk)
    if kind == "chat":
        body: dict[str, Any] = {
            "id": _pick("chatcmpl-1", rid), "object": "chat.completion", "created": 1, "model": _pick("gpt-4o", model),
            "choices": draw(chat_choices),
            "usage": {"prompt_tokens": t["input"], "completion_tokens": t["output"], "total_tokens": 3,
                      "prompt_tokens_details": _pick({"cached_tokens": t["cached"], "cache_write_tokens": t["write"]},
                                                     draw(maybe_junk)),
                      "completion_tokens_details": {"reasoning_tokens": t["reasoning"]}},
        }
        details = body["usage"]["prompt_tokens_details"]
        details = details if isinstance(details, dict) else {}
        expected = {"input": counted(t["input"]), "output": counted(t["output"]),
                    "cached": counted(details.get("cached_tokens")),
                    "write": counted(details.get("cache_write_tokens")), "reasoning": counted(t["reasoning"])}
    elif kind == "responses":
        body = {
            "id": _pick("resp_1", rid), "object": "response", "status": "completed", "model": _pick("gpt-4o", model),
            "output": draw(responses_output), "incomplete_details": draw(maybe_junk),
            "usage": {"input_tokens": t["input"], "output_tokens": t["output"], "total_tokens": 3,
                      "input_tokens_details": {"cached_tokens": t["cached"], "cache_write_tokens": t["write"]},
                      "output_tokens_details": {"reasoning_tokens": t["reasoning"]}},
        }
        expected = {"input": counted(t["input"]), "output": counted(t["output"]), "cached": counted(t["cached"]),
                    "write": counted(t["write"]), "reasoning": counted(t["reasoning"])}
    else:
        body = {
            "id": _pick("msg_1", rid), "type": "message", "role": "assistant", "model": _pick("claude-x", model),
            "content": _pick([{"type": "text", "text": "hi"}], draw(maybe_junk)),
            "stop_reason": draw(st.sampled_from(["end_turn", "refusal"]) | junk), "stop_details": draw(stop_details),
            "usage": {"input_tokens": t["input"], "output_tokens": t["output"],
                      "cache_read_input_tokens": t["cached"], "cache_creation_input_tokens": t["write"],
                      "output_tokens_details": {"thinking_tokens": t["reasoning"]}},
        }
        inp = counted(t["input"])
        expected = {"input": None if inp is None else inp + (counted(t["cached"]) or 0) + (counted(t["write"]) or 0),
                    "output": counted(t["output"]), "cached": counted(t["cached"]), "write": counted(t["write"]),
                    "reasoning": counted(t["reasoning"])}
    # Extra keys with junk values that the parser must ignore.
    for key in draw(st.lists(st.sampled_from(["system_fingerprint", "service_tier", "x", "metadata"]), max_size=2)):
        body[key] = draw(junk)
    return kind, body, expected


def tokens_of(r: ParsedResponse) -> dict[str, int | None]:
    return {"input": r.input_tokens, "output": r.output_tokens, "cached": r.cache_read_input_tokens,
            "write": r.cache_creation_input_tokens, "reasoning": r.reasoning_output_tokens}


def sane(tally: Tally, r: ParsedResponse) -> None:
    tally.expect(isinstance(r, ParsedResponse), f"{r!r}")
    for name, count in tokens_of(r).items():
        tally.expect(count is None or (type(count) is int and count >= 0), f"{name} tokens {count!r}")
    tally.expect(all(isinstance(f, str) for f in r.finish_reasons), f"finish reasons {r.finish_reasons!r}")
    tally.expect(r.response_model is None or isinstance(r.response_model, str), "model")


@examples
def test_fuzzed_usage_fields_in_real_shaped_bodies(
    n: int, report_line: Callable[[str], None], internal_log: LogCounter
) -> None:
    """Real OpenAI chat / Responses / Anthropic bodies with any JSON type in the token fields and junk
    elsewhere: never raises, and each count is exactly the field's value when that is a count, else absent."""
    with tallied("usage-json", n, report_line) as tally:

        def one(drawn: tuple[str, dict[str, Any], dict[str, int | None]]) -> None:
            with tally.example():
                kind, body, expected = drawn
                raw = json.dumps(body).encode()
                encoding = ("gzip", "deflate", None)[tally.examples % 3]
                if encoding == "deflate":
                    raw = zlib.compress(raw)
                elif encoding == "gzip":
                    packer = zlib.compressobj(wbits=31)
                    raw = packer.compress(raw) + packer.flush()
                r = parse_response(raw, status_code=200, content_type="application/json", content_encoding=encoding)
                internal_log.crashed(tally)
                sane(tally, r)
                tally.expect(tokens_of(r) == expected, f"{kind}: {tokens_of(r)} != {expected} for {body['usage']}")
                tally.bump(f"{kind} bodies")

        run_given(n, usage_bodies(), one)


@pytest.mark.parametrize("content", [5, 1.5, True, None, "text", {"type": "refusal"}])
def test_responses_output_content_of_any_type_keeps_the_usage(content: object, internal_log: LogCounter) -> None:
    """Found by the fuzzer: a number as an output item's ``content`` made the whole body unreadable."""
    body = {"id": "resp_1", "object": "response", "model": "gpt-4o",
            "output": [{"type": "message", "content": content}],
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}
    r = parse_response(json.dumps(body).encode(), status_code=200, content_type="application/json")
    assert (r.response_id, r.input_tokens, r.output_tokens, r.policy) == ("resp_1", 3, 4, None)
    assert not internal_log.records


# --- streams ---------------------------------------------------------------------------------------


def _sse(events: list[dict[str, Any]], *, named: bool, done: bool) -> bytes:
    out = []
    for e in events:
        if named:
            out.append(f"event: {e.get('type', 'x')}\n")
        out.append(f"data: {json.dumps(e)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, dict[str, int | None], bytes]:
    """A valid SSE stream (chat, Responses, Anthropic) with random counts, deltas and line endings.

    Returns (stream, expected final token counts, terminal marker).
    """
    kind = draw(st.sampled_from(["chat", "responses", "anthropic"]))
    inp, out, cached = (draw(st.integers(0, 10**7)) for _ in range(3))
    deltas = draw(st.lists(st.text(max_size=12), max_size=12))
    if kind == "chat":
        head = {"id": "chatcmpl-S", "object": "chat.completion.chunk", "model": "gpt-4o"}
        events = [{**head, "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]} for d in deltas]
        events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**head, "choices": [], "usage": {"prompt_tokens": inp, "completion_tokens": out,
                                                         "prompt_tokens_details": {"cached_tokens": cached}}})
        body, marker = _sse(events, named=False, done=True), b"[DONE]"
        expected = {"input": inp, "output": out, "cached": cached}
    elif kind == "responses":
        resp = {"id": "resp_S", "object": "response", "model": "gpt-4o", "status": "in_progress", "output": []}
        events = [{"type": "response.created", "response": resp}]
        events += [{"type": "response.output_text.delta", "delta": d} for d in deltas]
        events.append({"type": "response.completed", "response": {
            **resp, "status": "completed",
            "usage": {"input_tokens": inp, "output_tokens": out, "input_tokens_details": {"cached_tokens": cached}}}})
        body, marker = _sse(events, named=True, done=False), b"response.completed"
        expected = {"input": inp, "output": out, "cached": cached}
    else:
        start = {"id": "msg_S", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
                 "usage": {"input_tokens": inp, "cache_read_input_tokens": cached, "output_tokens": 1}}
        events = [{"type": "message_start", "message": start}]
        events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
                   for d in deltas]
        events.append({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": out}})
        events.append({"type": "message_stop"})
        body, marker = _sse(events, named=True, done=False), b"message_stop"
        expected = {"input": inp + cached, "output": out, "cached": cached}
    nl = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return body.replace(b"\n", nl), expected, marker


@st.composite
def cut_streams(draw: st.DrawFn) -> tuple[bytes, int, dict[str, int | None], bytes]:
    body, expected, marker = draw(streams())
    cut = draw(st.one_of(st.just(len(body)), st.integers(0, len(body)), st.integers(max(0, len(body) - 40), len(body))))
    return body, cut, expected, marker


@examples
def test_streams_cut_anywhere(n: int, report_line: Callable[[str], None], internal_log: LogCounter) -> None:
    """A valid stream cut at any byte (a connection that dropped): never raises, counts are the stream's
    or absent, ``complete`` only when the terminal event made it; the uncut stream reads exactly."""
    with tallied("usage-stream-cut", n, report_line) as tally:

        def one(drawn: tuple[bytes, int, dict[str, int | None], bytes]) -> None:
            with tally.example():
                body, cut, expected, marker = drawn
                part = body[:cut]
                r = parse_response(part, status_code=200, content_type="text/event-stream")
                internal_log.crashed(tally)
                sane(tally, r)
                got = {"input": r.input_tokens, "output": r.output_tokens, "cached": r.cache_read_input_tokens}
                if cut == len(body):
                    tally.bump("whole streams")
                    tally.expect(got == expected and r.complete, f"whole stream: {got} != {expected}, {r!r}")
                else:
                    tally.bump("cut streams")
                    # Anthropic's message_start reports 1 output token before the final delta.
                    for name, value in got.items():
                        tally.expect(value is None or value == expected[name] or (name == "output" and value == 1),
                                     f"cut at {cut}: {name}={value}, stream says {expected[name]}")
                    tally.expect(not r.complete or marker in part, f"cut at {cut} reads as complete")

        run_given(n, cut_streams(), one)


# --- random chunking through the body watcher ----------------------------------------------------

#: A stream longer than the watcher keeps whole: it must hand over head + tail.
_BIG_DELTA = {"id": "chatcmpl-B", "object": "chat.completion.chunk", "model": "gpt-4o",
              "choices": [{"index": 0, "delta": {"content": "r\u00e9sum\u00e9 \u2603 "}, "finish_reason": None}]}
_BIG_USAGE = {"id": "chatcmpl-B", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [],
              "usage": {"prompt_tokens": 77, "completion_tokens": 5555}}
BIG_STREAM = _sse([_BIG_DELTA] * 9000 + [{**_BIG_DELTA, "choices": [{"index": 0, "delta": {},
                                                                        "finish_reason": "stop"}]}, _BIG_USAGE],
                  named=False, done=True)
assert len(BIG_STREAM) > WHOLE_LIMIT


class FakeStream(httpx.SyncByteStream):
    """A transport byte stream yielding the given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        self.closed += 1


class FakeAsyncStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.closed = 0

    async def __aiter__(self) -> Any:
        for chunk in self._chunks:
            await asyncio.sleep(0)
            yield chunk

    async def aclose(self) -> None:
        self.closed += 1


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes], int | None, bool]:
    """(body, chunks, chunks read before the caller stops or None to read all, async)."""
    source = draw(st.sampled_from(["stream", "stream", "big", "bytes"]))
    if source == "stream":
        body = draw(streams())[0]
    elif source == "big":
        body = BIG_STREAM
    else:
        body = draw(st.binary(max_size=3000))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=40 if source != "big" else 12)))
    if source == "big":  # plus cuts around the head/tail boundaries
        cuts = sorted([*cuts, *draw(st.lists(st.sampled_from([
            HEAD_BYTES - 1, HEAD_BYTES, HEAD_BYTES + 1, WHOLE_LIMIT - 1, WHOLE_LIMIT, WHOLE_LIMIT + 1,
            len(body) - TAIL_BYTES - 1, len(body) - TAIL_BYTES, len(body) - TAIL_BYTES + 1]), max_size=4))])
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds)]  # empty chunks included
    stop = draw(st.none() | st.integers(0, len(chunks)))
    return body, chunks, stop, draw(st.booleans())


@examples
def test_random_chunking_through_the_body_watcher(
    n: int, report_line: Callable[[str], None], internal_log: LogCounter
) -> None:
    """A body split into random chunks (empty ones too, around the 1 MiB whole/head+tail switch) through
    the watcher, sync and async, read to the end or dropped early: every byte passes through unchanged,
    the body is reported exactly once, as the whole body or exactly its head + tail, and parses the same."""
    with tallied("watcher", n, report_line) as tally:
        loop = asyncio.new_event_loop()

        def one(drawn: tuple[bytes, list[bytes], int | None, bool]) -> None:
            with tally.example():
                example(*drawn)

        def example(body: bytes, chunks: list[bytes], stop: int | None, is_async: bool) -> None:
            reports: list[tuple[bytes, bool, bool, BaseException | None]] = []
            stream: Any = FakeAsyncStream(chunks) if is_async else FakeStream(chunks)
            tally.expect(watch_stream(stream, BodyWatcher(lambda *a: reports.append(a))), "not watched")
            limit = len(chunks) if stop is None else stop
            if is_async:
                got = loop.run_until_complete(_read_async(stream, stop))
            else:
                it = iter(stream)
                got = [next(it) for _ in range(limit)]
                if stop is None:
                    tally.expect(next(it, None) is None, "more chunks than sent")
                it.close()  # type: ignore[attr-defined]
                stream.close()
            read = b"".join(got)
            tally.expect(got == chunks[:limit], "chunks changed on the way through")
            tally.expect(len(reports) == 1, f"{len(reports)} reports")
            seen, whole, complete, _ = reports[0]
            finished = stop is None
            tally.expect(complete == finished, f"complete={complete}, read to the end: {finished}")
            if len(read) <= WHOLE_LIMIT:
                tally.expect(whole and seen == read, "small body not reported whole")
            else:
                tally.bump("head+tail reports")
                tally.expect(not whole and seen == read[:HEAD_BYTES] + b"\n\n" + read[-TAIL_BYTES:],
                             "head + tail differ from the body's")
            r = parse_response(seen, status_code=200, content_type="text/event-stream", whole=whole)
            internal_log.crashed(tally)
            sane(tally, r)
            if finished and body is BIG_STREAM:
                tally.expect((r.input_tokens, r.output_tokens, r.complete) == (77, 5555, True), f"{r!r}")
            elif whole:
                tally.expect(r == parse_response(read, status_code=200, content_type="text/event-stream"),
                             "the watcher's copy parses differently")
            tally.bump("async" if is_async else "sync")

        try:
            run_given(n, chunked(), one)
        finally:
            loop.close()


async def _read_async(stream: Any, stop: int | None) -> list[bytes]:
    it = stream.__aiter__()
    got = [chunk async for chunk in it] if stop is None else [await it.__anext__() for _ in range(stop)]
    await it.aclose()
    await stream.aclose()
    return got
