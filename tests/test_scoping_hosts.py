"""Where alephant data may go: gateway headers to the gateway only, alephant baggage to internal hosts only.

``tests/test_headers.py`` shows one non-gateway server getting no alephant-* headers (httpx and httpx2),
and ``tests/test_cross_service.py`` shows the scoping switch with one sync httpx client and the default
propagation. This module adds:

* the scoping switch (``baggage_hosts=`` and ``ALEPHANT_SCOPE_BAGGAGE``, host:port and ``true``) with
  httpx and httpx2, sync and async, and the ``openai`` SDK pointed straight at a third party: the third
  party gets no alephant-* header, no ``x-request-id`` and no ``alephant.*`` baggage entry, other baggage
  passes; the gateway gets the headers and never alephant baggage, even when it is listed as internal;
* lookalike hosts, over real loopback HTTP to the very same emulator (a name-resolution shim sends
  ``ai.alephant.io`` and every ``*.test``/lookalike name to 127.0.0.1, so only the name differs):
  subdomain and suffix tricks, the gateway's name in the path, query, fragment or userinfo, another port,
  uppercase, a trailing dot, IDNA lookalikes; then the same and more (another scheme) through the URL
  parsing of httpx and httpx2 into the matcher, and a hypothesis property over random hostnames.

Decisions pinned here: host names match case-insensitively; a trailing dot (the fully qualified form of
the same DNS name) is the gateway; internationalised names compare in their IDNA (punycode) form, so
``\u0430\u0456.alephant.io`` (Cyrillic) is not ``ai.alephant.io`` but a gateway configured by either spelling of
an IDN host is recognised by both clients.
"""

from __future__ import annotations

import socket
import string
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

import alephant_otel
from alephant_otel import run, session
from alephant_otel.testing import Fault as GatewayFault
from alephant_otel.testing import GatewayEmulator
from alephant_otel.wire._gateway import GatewayMatcher
from alephant_otel.wire._request import _url_parts

ALEPHANT_HEADERS = (
    "alephant-session-id",
    "alephant-session-name",
    "alephant-session-path",
    "alephant-agent-id",
    "alephant-run-id",
)
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def baggage_of(headers) -> dict[str, str]:
    """The W3C baggage entries a server received, parsed by OTel's own propagator."""
    value = headers.get("baggage")
    if value is None:
        return {}
    return {k: str(v) for k, v in baggage.get_all(W3CBaggagePropagator().extract({"baggage": value})).items()}


def alephant_on(req) -> dict[str, object]:
    """Everything alephant a request carried: headers, our x-request-id, alephant.* baggage."""
    found: dict[str, object] = {h: req.headers[h] for h in (*ALEPHANT_HEADERS, "x-request-id") if h in req.headers}
    found |= {k: v for k, v in baggage_of(req.headers).items() if k.startswith("alephant.")}
    return found


# --- (a) the scoping switch -------------------------------------------------------------------------


@dataclass
class Hosts:
    gateway: GatewayEmulator
    internal: GatewayEmulator
    third_party: GatewayEmulator
    internal_gets_baggage: bool


@pytest.fixture(params=["argument", "environment", "environment-true"])
def scoped(request, gateway: GatewayEmulator, tracer_provider, monkeypatch) -> Iterator[Hosts]:
    """Scoping on, three loopback servers that differ only by port: the gateway, an internal service, a third party."""
    with GatewayEmulator() as internal, GatewayEmulator() as third_party:
        host_port = internal.url.removeprefix("http://")
        if request.param == "argument":
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider, baggage_hosts=[host_port])
        elif request.param == "environment":
            monkeypatch.setenv("ALEPHANT_SCOPE_BAGGAGE", f" {host_port} , billing.internal:8443")
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
        else:
            monkeypatch.setenv("ALEPHANT_SCOPE_BAGGAGE", "true")  # on, and nobody is internal
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
        try:
            yield Hosts(gateway, internal, third_party, internal_gets_baggage=request.param != "environment-true")
        finally:
            monkeypatch.delenv("ALEPHANT_SCOPE_BAGGAGE", raising=False)
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)


class tenant_baggage:
    """A non-alephant baggage entry next to the session's, to show other entries are never touched."""

    def __enter__(self) -> None:
        self._token = otel_context.attach(baggage.set_baggage("tenant", "acme"))

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self._token)


def check_scoped(hosts: Hosts, per_host: int) -> None:
    gw, internal, third = hosts.gateway.requests, hosts.internal.requests, hosts.third_party.requests
    assert len(gw) == len(internal) == len(third) == per_host
    for req in third:
        assert alephant_on(req) == {}
        assert baggage_of(req.headers) == {"tenant": "acme"}
    for req in internal:
        # Not the gateway: no alephant-* headers; baggage only when it is listed.
        expected = {"alephant.session.id": "sess_scope", "alephant.agent.id": "scoper", "alephant.run.id": "run_scope"}
        assert alephant_on(req) == (expected if hosts.internal_gets_baggage else {})
        assert baggage_of(req.headers)["tenant"] == "acme"
    for req in gw:
        assert req.headers["alephant-session-id"] == "sess_scope"
        assert req.headers["alephant-run-id"] == "run_scope"
        assert req.headers["x-request-id"].startswith("req_")
        assert baggage_of(req.headers) == {"tenant": "acme"}  # never alephant baggage


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_scoped_sync(module, scoped: Hosts) -> None:
    with module.Client() as client, session("sess_scope"), run("run_scope", agent_id="scoper"), tenant_baggage():
        for _ in range(2):
            for srv in (scoped.third_party, scoped.internal, scoped.gateway):
                client.post(srv.url + "/v1/chat/completions", json=CHAT).raise_for_status()
    check_scoped(scoped, per_host=2)


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_scoped_async(module, scoped: Hosts) -> None:
    async with module.AsyncClient() as client:
        with session("sess_scope"), run("run_scope", agent_id="scoper"), tenant_baggage():
            for srv in (
                scoped.internal,
                scoped.third_party,
                scoped.gateway,
                scoped.third_party,
                scoped.internal,
                scoped.gateway,
            ):
                (await client.post(srv.url + "/v1/embeddings", json={"model": "m", "input": "x"})).raise_for_status()
    check_scoped(scoped, per_host=2)


def test_scoped_openai_sdk_straight_to_a_third_party(scoped: Hosts) -> None:
    """An OpenAI-compatible provider called directly (not through the gateway) learns nothing."""
    clients = {
        srv: openai.OpenAI(base_url=srv.url + "/v1", api_key="k", max_retries=0)
        for srv in (scoped.third_party, scoped.internal, scoped.gateway)
    }
    with session("sess_scope"), run("run_scope", agent_id="scoper"), tenant_baggage():
        for client in clients.values():
            with client:
                client.chat.completions.create(**CHAT)
                for _ in client.chat.completions.create(**CHAT, stream=True):
                    pass
    check_scoped(scoped, per_host=2)


def test_the_gateway_never_gets_alephant_baggage_even_when_listed_as_internal(
    gateway: GatewayEmulator, other_server: GatewayEmulator, tracer_provider
) -> None:
    """An internal-hosts entry that also covers the gateway (same host, no port) must not reopen the gateway."""
    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider, baggage_hosts=["127.0.0.1"])
    try:
        with httpx.Client() as client, session("sess_listed"), tenant_baggage():
            client.get(gateway.url + "/v1/models")
            client.get(other_server.url + "/v1/models")  # 127.0.0.1, any port: internal
    finally:
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    (gw,) = gateway.requests
    assert gw.headers["alephant-session-id"] == "sess_listed"
    assert baggage_of(gw.headers) == {"tenant": "acme"}
    (internal,) = other_server.requests
    assert baggage_of(internal.headers) == {"alephant.session.id": "sess_listed", "tenant": "acme"}
    assert "alephant-session-id" not in internal.headers


@pytest.mark.parametrize(
    ("entry", "url", "internal"),
    [
        ("Svc.Internal.test.:{p}", "http://svc.internal.test:{p}/v1/models", True),  # case, trailing dot
        ("svc.internal.test", "http://svc.internal.test.:{p}/v1/models", True),  # dot on the request side
        ("svc.internal.test:{q}", "http://svc.internal.test:{p}/v1/models", False),  # another port
        ("other.test:{p}", "http://svc.internal.test:{p}/v1/models", False),
    ],
)
def test_internal_host_entries_are_normalised(
    entry: str, url: str, internal: bool, gateway: GatewayEmulator, tracer_provider, loopback_names
) -> None:
    """Entries are matched as the request goes on the wire: any case, with or without a trailing dot."""
    with GatewayEmulator() as svc:
        port = int(svc.url.rsplit(":", 1)[1])
        hosts = [entry.format(p=port, q=port + 1)]
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider, baggage_hosts=hosts)
        try:
            with httpx.Client() as client, session("sess_entry"), tenant_baggage():
                client.get(url.format(p=port))
        finally:
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
        (req,) = svc.requests
    expected = {"alephant.session.id": "sess_entry", "tenant": "acme"} if internal else {"tenant": "acme"}
    assert baggage_of(req.headers) == expected


@pytest.mark.parametrize(
    ("entry", "host", "port", "scheme", "internal"),
    [
        ("svc:80", "svc", None, "http", True),  # the scheme's default port, named in the entry
        ("svc:443", "svc", None, "https", True),
        ("svc:443", "svc", None, "http", False),
        ("svc", "svc", 8080, "http", True),  # an entry without a port: any port
        ("[::1]:9000", "::1", 9000, "http", True),  # httpx gives IPv6 hosts without brackets
        ("[::1]", "::1", 1234, "http", True),
        ("::1", "::1", 1234, "http", True),
        ("bücher.test", "xn--bcher-kva.test", None, "https", True),  # IDNA, as on the wire
    ],
)
def test_internal_host_entry_forms(entry: str, host: str, port: int | None, scheme: str, internal: bool) -> None:
    """The entry forms that cannot be served on loopback here: through the propagator itself."""
    from opentelemetry import baggage as otel_baggage

    from alephant_otel.wire import _scoping

    _scoping.set_internal_hosts(frozenset({entry}))
    try:
        ctx = otel_baggage.set_baggage("alephant.session.id", "sess_forms")
        ctx = otel_baggage.set_baggage("tenant", "acme", ctx)
        span = trace.NonRecordingSpan(trace.SpanContext(1, 2, is_remote=False))
        ctx = trace.set_span_in_context(span, ctx)  # the request's CLIENT span, current at injection
        carrier: dict[str, str] = {}
        _scoping.mark_outgoing(host, port, gateway=False, span=span, scheme=scheme)
        _scoping.ScopedBaggagePropagator().inject(carrier, ctx)
    finally:
        _scoping.set_internal_hosts(None)
    assert ("alephant.session.id=sess_forms" in carrier["baggage"]) is internal
    assert "tenant=acme" in carrier["baggage"]



# --- redirects -------------------------------------------------------------------------------------


def _request_ids(spans) -> list[str]:
    found = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]
    return [s.attributes["alephant.request.id"] for s in sorted(found, key=lambda s: s.start_time)]


def test_a_gateway_redirect_to_another_host_does_not_carry_the_gateway_headers(
    gateway: GatewayEmulator, other_server: GatewayEmulator, spans
) -> None:
    # httpx builds a redirect from the previous request's headers, which the hook had given
    # the gateway headers: without care they followed a 307 to storage or any other host.
    target = other_server.url + "/v1/chat/completions"
    gateway.add_fault(GatewayFault.redirect(target), times=2)
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-secret", max_retries=0)
    with client, session("sess_redirect", name="Refund"), run("run_redirect", agent_id="triage"), tenant_baggage():
        client.chat.completions.create(**CHAT)  # the SDK (httpx2) follows redirects
        with httpx.Client(follow_redirects=True) as plain:
            plain.post(gateway.url + "/v1/chat/completions", json=CHAT, headers={"x-request-id": "mine"})
    first, second = gateway.requests
    assert first.headers["alephant-session-id"] == second.headers["alephant-session-id"] == "sess_redirect"
    sdk_hop, plain_hop = other_server.requests
    # Only the alephant baggage, which (scoping off) goes to any host but the gateway.
    assert alephant_on(sdk_hop) == {
        "alephant.session.id": "sess_redirect",
        "alephant.session.name": "Refund",
        "alephant.agent.id": "triage",
        "alephant.run.id": "run_redirect",
    }
    assert "authorization" not in sdk_hop.headers  # what httpx itself drops
    assert baggage_of(sdk_hop.headers)["tenant"] == "acme"
    # The caller's own x-request-id goes where httpx sends it; the package's does not.
    assert {h: plain_hop.headers.get(h) for h in (*ALEPHANT_HEADERS, "x-request-id")} == {
        **dict.fromkeys(ALEPHANT_HEADERS), "x-request-id": "mine"
    }
    assert _request_ids(spans) == [first.headers["x-request-id"], "mine"]


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_redirect_within_the_gateway_is_a_request_of_its_own(module, gateway: GatewayEmulator, spans) -> None:
    gateway.add_fault(GatewayFault.redirect(gateway.url + "/v1/chat/completions"), path="/v1/chat")
    with module.Client(follow_redirects=True) as client, session("sess_moved"):
        reply = client.post(gateway.url + "/v1/chat", json=CHAT)
    assert reply.status_code == 200
    moved, answered = gateway.requests
    assert moved.headers["alephant-session-id"] == answered.headers["alephant-session-id"] == "sess_moved"
    # Each hop has its own request id, as each has its own span.
    assert moved.headers["x-request-id"] != answered.headers["x-request-id"]
    assert _request_ids(spans) == [moved.headers["x-request-id"], answered.headers["x-request-id"]]
    with pytest.raises(ValueError, match="3xx"):
        GatewayFault.redirect(gateway.url, status=200)


def test_a_request_marker_holds_under_its_span_and_its_children_only(tracer_provider) -> None:
    """A second client instrumentation below httpx injects again into the same request.

    ``opentelemetry-instrumentation-aiohttp-client`` under an aiohttp-backed httpx
    transport does, under its own child span: the gateway must not get the alephant
    baggage from that injection either. A marker left by a finished request
    applies to nothing else.
    """
    from alephant_otel.wire import _scoping

    tracer = tracer_provider.get_tracer("test")
    propagator = _scoping.ScopedBaggagePropagator()

    def injected() -> str:
        carrier: dict[str, str] = {}
        propagator.inject(carrier)
        return carrier.get("baggage", "")

    ctx = baggage.set_baggage("alephant.session.id", "sess_nested")
    token = otel_context.attach(baggage.set_baggage("tenant", "acme", ctx))
    try:
        with tracer.start_as_current_span("POST", kind=trace.SpanKind.CLIENT) as http_span:
            _scoping.mark_outgoing("gateway.test", None, gateway=True, span=http_span)
            assert injected() == "tenant=acme"  # the httpx instrumentation's injection
            with tracer.start_as_current_span("POST inner", kind=trace.SpanKind.CLIENT):
                assert injected() == "tenant=acme"  # the nested instrumentation's
        with tracer.start_as_current_span("GET", kind=trace.SpanKind.CLIENT):
            # Another client's request (say requests, to an internal service), no marker of its own.
            assert injected() == "alephant.session.id=sess_nested,tenant=acme"
        assert injected() == "alephant.session.id=sess_nested,tenant=acme"
    finally:
        otel_context.detach(token)

# --- (b) lookalike hosts, over real loopback HTTP ---------------------------------------------------------

GATEWAY_HOST = "ai.alephant.io"
CYRILLIC = "\u0430\u0456.alephant.io"  # Cyrillic a and i: renders like ai.alephant.io


def _resolves_to_loopback(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name.endswith((".test", "alephant.io", "alephant.io.evil"))


@pytest.fixture
def loopback_names(monkeypatch) -> None:
    """Resolve ai.alephant.io, its lookalikes and *.test to 127.0.0.1, for sync and async clients alike."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and _resolves_to_loopback(name):
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def named_gateway(loopback_names, spans, tracer_provider) -> Iterator[tuple[GatewayEmulator, int]]:
    """The emulator as http://ai.alephant.io:PORT: lookalikes reach the same server under another name."""
    with GatewayEmulator() as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        alephant_otel.configure(gateway_url=f"http://{GATEWAY_HOST}:{port}/v1", tracer_provider=tracer_provider)
        yield gw, port


# (URL template, is the gateway). {p} is the gateway's port; every URL reaches the same emulator.
LOOPBACK_CASES = [
    ("http://ai.alephant.io:{p}/v1/models", True),
    ("http://AI.Alephant.IO:{p}/v1/models", True),  # host names are case-insensitive
    ("http://ai.alephant.io.:{p}/v1/models", True),  # trailing dot: the fully qualified same name
    ("http://ai.alephant.io.evil.test:{p}/v1/models", False),
    ("http://xai.alephant.io:{p}/v1/models", False),
    ("http://evil.test:{p}/ai.alephant.io/v1/models", False),
    ("http://evil.test:{p}/v1/models?x=ai.alephant.io", False),
    ("http://evil.test:{p}/v1/models?x=http://ai.alephant.io:{p}/v1", False),
    ("http://ai.alephant.io@evil.test:{p}/v1/models", False),
    ("http://ai.alephant.io:{p}@evil.test:{p}/v1/models", False),
    ("http://evil.test:{p}/v1/models#@ai.alephant.io", False),
    ("http://" + CYRILLIC + ":{p}/v1/models", False),  # IDNA lookalike, sent as xn--80a0f.alephant.io
    ("http://ai-alephant.io.test:{p}/v1/models", False),
]


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_lookalikes_over_loopback(module, named_gateway) -> None:
    gw, port = named_gateway
    with module.Client() as client, session("sess_look"), run("run_look", agent_id="look"):
        for template, _ in LOOPBACK_CASES:
            client.get(template.format(p=port)).raise_for_status()
    sent = gw.requests
    assert len(sent) == len(LOOPBACK_CASES)
    as_baggage = {"alephant.session.id": "sess_look", "alephant.run.id": "run_look", "alephant.agent.id": "look"}
    for (template, is_gateway), req in zip(LOOPBACK_CASES, sent, strict=True):
        got = alephant_on(req)
        if is_gateway:
            # Headers, and (OTel's default propagation otherwise) no alephant baggage: the gateway.
            assert got.get("alephant-session-id") == "sess_look", template
            assert "x-request-id" in got, template
            assert not set(got) & set(as_baggage), template
        else:
            # No headers, no x-request-id; the ids only as baggage, as for any non-gateway host.
            assert got == as_baggage, f"{template} (Host: {req.headers['host']}) got {got}"


async def test_lookalikes_over_loopback_async_and_another_port(named_gateway) -> None:
    gw, port = named_gateway
    with GatewayEmulator() as elsewhere:  # the gateway's name, another port
        other_port = int(elsewhere.url.rsplit(":", 1)[1])
        async with httpx2.AsyncClient() as client, httpx.AsyncClient() as client1:
            with session("sess_look_async"):
                for c in (client, client1):
                    (await c.get(f"http://ai.alephant.io:{other_port}/v1/models")).raise_for_status()
                    (await c.get(f"http://ai.alephant.io.evil.test:{port}/v1/models")).raise_for_status()
                    (await c.get(f"http://AI.ALEPHANT.IO:{port}/v1/models")).raise_for_status()
        as_baggage = {"alephant.session.id": "sess_look_async"}
        assert [alephant_on(r) for r in elsewhere.requests] == [as_baggage, as_baggage]
    first, upper, second, upper1 = gw.requests
    assert alephant_on(first) == alephant_on(second) == as_baggage
    assert upper.headers["alephant-session-id"] == upper1.headers["alephant-session-id"] == "sess_look_async"


@pytest.mark.parametrize("configured", ["http://xn--80a0f.alephant.io:{p}", "http://" + CYRILLIC + ":{p}"])
@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_an_idn_gateway_is_recognised_in_either_spelling(module, configured, loopback_names, tracer_provider) -> None:
    with GatewayEmulator() as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        alephant_otel.configure(gateway_url=configured.format(p=port), tracer_provider=tracer_provider)
        with module.Client() as client, session("sess_idn"):
            client.get(f"http://{CYRILLIC}:{port}/v1/models")
            client.get(f"http://xn--80a0f.alephant.io:{port}/v1/models")
            client.get(f"http://{GATEWAY_HOST}:{port}/v1/models")  # the Latin name is another host
        spellings = [alephant_on(r).get("alephant-session-id") for r in gw.requests]
        assert spellings == ["sess_idn", "sess_idn", None]


# --- (b) the same through URL parsing, without a network ----------------------------------------------

MATCHER = GatewayMatcher(["https://ai.alephant.io/v1"])

URL_CASES = [
    ("https://ai.alephant.io/v1/chat/completions", True),
    ("https://ai.alephant.io:443/v1/chat/completions", True),  # the default port, spelled out
    ("https://AI.ALEPHANT.IO/v1/messages", True),
    ("HTTPS://ai.alephant.io/v1/messages", True),
    ("https://ai.alephant.io./v1/messages", True),
    ("https://ai.alephant.io", True),
    ("http://ai.alephant.io/v1/chat/completions", False),  # another scheme
    ("https://ai.alephant.io:8443/v1/chat/completions", False),  # another port
    ("https://ai.alephant.io:80/v1/chat/completions", False),
    ("https://ai.alephant.io.evil.test/v1/chat/completions", False),
    ("https://ai.alephant.io.evil.test./v1/chat/completions", False),
    ("https://xai.alephant.io/v1/chat/completions", False),
    ("https://alephant.io/v1/chat/completions", False),
    ("https://eu.ai.alephant.io/v1/chat/completions", False),
    ("https://evil.test/ai.alephant.io/v1/chat/completions", False),
    ("https://evil.test/v1/chat/completions?x=ai.alephant.io", False),
    ("https://evil.test/v1/chat/completions?url=https://ai.alephant.io/v1", False),
    ("https://ai.alephant.io@evil.test/v1/chat/completions", False),
    ("https://ai.alephant.io:443@evil.test/v1/chat/completions", False),
    ("https://user:pass@evil.test:443/v1/chat/completions", False),
    ("https://evil.test#@ai.alephant.io", False),
    ("https://evil.test/#https://ai.alephant.io/v1", False),
    ("https://" + CYRILLIC + "/v1/chat/completions", False),
    ("https://xn--80a0f.alephant.io/v1/chat/completions", False),
    ("https://ai.aleph\u0430nt.io/v1/chat/completions", False),  # one Cyrillic a in the middle
    ("https://ai.alephant.io\u3002evil.test/v1", False),  # ideographic full stop: IDNA maps it to "."
    ("https://[::1]:443/v1/chat/completions", False),
    ("https://127.0.0.1/v1/chat/completions", False),
]


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize(("url", "is_gateway"), URL_CASES, ids=[u for u, _ in URL_CASES])
def test_matcher_through_client_url_parsing(module, url: str, is_gateway: bool) -> None:
    parsed = module.URL(url)
    assert MATCHER.matches(*_url_parts(parsed)) is is_gateway, (parsed.host, parsed.port, parsed.path)


def test_a_path_prefix_is_matched_by_segments() -> None:
    matcher = GatewayMatcher(["https://proxy.example.com/alephant/v1"])
    assert matcher.matches("https", "proxy.example.com", None, "/alephant/v1/chat/completions")
    assert matcher.matches("https", "proxy.example.com", None, "/alephant")
    assert not matcher.matches("https", "proxy.example.com", None, "/alephantx/v1/chat/completions")
    assert not matcher.matches("https", "proxy.example.com", None, "/v1/chat/completions")
    assert not matcher.matches("https", "proxy.example.com", None, "/other/alephant/v1")


_LABEL = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=20).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
# A name whose last label is all digits is an IPv4 address to URL parsers ("0.0.0.00" is then
# invalid), and no top-level domain is numeric (RFC 3696 section 2).
HOSTNAMES = st.lists(_LABEL, min_size=1, max_size=5).filter(lambda labels: not labels[-1].isdigit()).map(".".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(host=HOSTNAMES, port=st.sampled_from([None, 443, 80, 8443]), path=st.sampled_from(["/v1/chat", "/", ""]))
def test_property_no_other_hostname_is_the_gateway(host: str, port: int | None, path: str) -> None:
    matched = MATCHER.matches("https", host, port, path)
    assert matched is (host == GATEWAY_HOST and port in (None, 443))


@settings(max_examples=300, deadline=None)
@given(
    host=HOSTNAMES,
    trick=st.sampled_from(
        [
            "https://{g}.{h}/v1",
            "https://{h}.{g}/v1",
            "https://x{g}/v1",
            "https://{h}/{g}/v1",
            "https://{h}/v1?{g}",
            "https://{h}/v1#{g}",
            "https://{g}@{h}/v1",
            "https://{g}:443@{h}/v1",
            "https://{h}#@{g}/v1",
            "https://{h}?@{g}/v1",
            "https://{g}-{h}/v1",
        ]
    ),
    module=st.sampled_from([httpx, httpx2]),
)
def test_property_the_gateway_name_elsewhere_in_a_url_is_not_the_gateway(host: str, trick: str, module) -> None:
    url = module.URL(trick.format(g=GATEWAY_HOST, h=host))
    assert not MATCHER.matches(*_url_parts(url)), str(url)


@settings(max_examples=200, deadline=None)
@given(host=HOSTNAMES, data=st.data())
def test_property_a_configured_host_matches_in_any_case_and_with_a_trailing_dot(host: str, data) -> None:
    matcher = GatewayMatcher([f"https://{host}/v1"])
    spelled = "".join(c.upper() if data.draw(st.booleans()) else c for c in host)
    spelled += data.draw(st.sampled_from(["", "."]))
    for module in (httpx, httpx2):
        assert matcher.matches(*_url_parts(module.URL(f"https://{spelled}/v1/chat/completions")))
