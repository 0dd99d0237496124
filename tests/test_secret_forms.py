"""Issue 36: credentials recognised by their form, in every place data leaves the process.

Each form (a JWT, AWS key ids, GitHub, GitLab, Slack, Google, Stripe-less forge and cloud tokens,
a PEM private key, URL and DSN passwords, Azure keys and signatures, an OAuth code, and the
name-based cases the issue found cut short: ``password=Ab(c...)``, a passphrase with spaces,
numbers under a secret name, a double-encoded name) gets a distinct random secret in each road:
exception messages, status descriptions, attribute values, span names, event names, link and
resource attributes, the gateway's 403/400 error body, inbound W3C baggage, a run name, and the
agent id and session path that are also metric dimensions.

A child process sends them through ``configure()`` with the trace file, a real OTLP/HTTP span
exporter and a real OTLP/HTTP metric exporter, all to loopback; then every exported byte (trace
file, raw protobuf trace bodies, raw protobuf metric bodies) is searched for every secret, and
each place that held one must say it was scrubbed.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import string
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from _util import ROOT, clean_env
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status, StatusCode
from test_secrets import find_leaks

from alephant_otel.export._scrubexport import scrub_span
from alephant_otel.redact._scrub import scrub_attributes, scrub_text
from alephant_otel.testing import Fault, GatewayEmulator
from alephant_otel.testing._server import LoopbackServer, QuietHTTPHandler, QuietHTTPServer

_RNG = random.SystemRandom()
_ALNUM = string.ascii_letters + string.digits
_B32 = string.ascii_uppercase + "234567"


def _rand(n: int, chars: str = _ALNUM) -> str:
    return "".join(_RNG.choice(chars) for _ in range(n))


def _b64url(n: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=")


#: What fits where: "token" (no whitespace: an agent id, a path), "line" (spaces: a name),
#: "text" (newlines too: messages, attributes, span names).
FITS = {"token": 0, "line": 1, "text": 2}


class Form:
    """One credential form: makes (carrier text, secrets that must not survive, the note it gets)."""

    def __init__(self, name: str, fit: str, note: str, make: Callable[[], tuple[str, list[str]]]) -> None:
        self.name, self.fit, self.note, self.make = name, fit, note, make


def _jwt() -> tuple[str, list[str]]:
    payload, sig = _b64url(30), _b64url(32)
    return f"eyJhbGciOiJIUzI1NiJ9.eyJ{payload}.{sig}", [payload, sig]


def _one(text: str) -> tuple[str, list[str]]:
    return text, [text]


def _pem() -> tuple[str, list[str]]:
    body = base64.b64encode(os.urandom(48)).decode()
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----", [body]


def _tail(carrier: str, secret: str) -> tuple[str, list[str]]:
    return carrier, [secret]


def _forms() -> list[Form]:
    gh = lambda prefix: Form(prefix.rstrip("_"), "token", "'GitHub token'", lambda: _one(prefix + _rand(36)))  # noqa: E731
    slack = lambda p: Form(p, "token", "'Slack token'", lambda: _one(f"{p}-{_rand(12, string.digits)}-{_rand(24)}"))  # noqa: E731

    def git_url() -> tuple[str, list[str]]:
        token = "ghp_" + _rand(36)
        return f"https://{token}@github.com/acme/app.git", [token]

    def dsn() -> tuple[str, list[str]]:
        pw = "Pw" + _rand(18)
        return f"postgres://app:{pw}@db.internal:5432/main", [pw]

    def userinfo() -> tuple[str, list[str]]:
        pw = "Pw" + _rand(18)
        return f"https://bob:{pw}@api.example.test/v1/items", [pw]

    def account_key() -> tuple[str, list[str]]:
        key = base64.b64encode(os.urandom(66)).decode()
        return (
            f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={key};EndpointSuffix=core.windows.net",
            [key],
        )

    def sas_key() -> tuple[str, list[str]]:
        key = base64.b64encode(os.urandom(33)).decode()
        return f"Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={key}", [key]

    def sig() -> tuple[str, list[str]]:
        value = _rand(43)
        return f"https://acme.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-01-01&sig={value}%3D", [value]

    def code() -> tuple[str, list[str]]:
        value = _rand(24)
        return f"https://app.example.test/callback?code={value}&state=xyz", [value]

    def paren() -> tuple[str, list[str]]:
        tail = _rand(16)
        return f"password=Ab(c{tail})", [f"c{tail}"]

    def phrase() -> tuple[str, list[str]]:
        w1, w2 = _rand(12, string.ascii_lowercase), _rand(12, string.ascii_lowercase)
        return f"passphrase=correct horse {w1} battery {w2}", [w1, w2]

    def otp() -> tuple[str, list[str]]:
        value = _rand(9, string.digits)
        return f"otp_token={value}", [value]

    def numeric_str() -> tuple[str, list[str]]:
        value = _rand(12, string.digits)
        return f'{{"db.password": "{value}"}}', [value]

    def double_encoded() -> tuple[str, list[str]]:
        value = _rand(24)
        return f"https://api.example.test/v1/x?api%255Fkey={value}&v=1", [value]

    return [
        Form("jwt", "token", "'JWT'", _jwt),
        Form("akia", "token", "'AWS access key id'", lambda: _one("AKIA" + _rand(16, _B32))),
        Form("asia", "token", "'AWS access key id'", lambda: _one("ASIA" + _rand(16, _B32))),
        gh("ghp_"),
        gh("gho_"),
        gh("ghu_"),
        gh("ghs_"),
        gh("ghr_"),
        Form("github_pat", "token", "'GitHub token'", lambda: _one(f"github_pat_{_rand(22)}_{_rand(59)}")),
        Form("git_url", "token", "'GitHub token'", git_url),
        Form("glpat", "token", "'GitLab token'", lambda: _one("glpat-" + _rand(20, _ALNUM + "_-"))),
        slack("xoxa"),
        slack("xoxb"),
        slack("xoxp"),
        slack("xoxr"),
        Form("aiza", "token", "'Google API key'", lambda: _one("AIza" + _rand(35, _ALNUM + "_-"))),
        Form("pem", "text", "'private key'", _pem),
        Form("dsn", "token", "'password in URL'", dsn),
        Form("userinfo", "token", "'password in URL'", userinfo),
        Form("account_key", "token", "AccountKey=REDACTED", account_key),
        Form("sas_key", "token", "SharedAccessKey=REDACTED", sas_key),
        Form("sig", "token", "sig=REDACTED", sig),
        Form("oauth_code", "token", "'OAuth code'", code),
        Form("password_paren", "token", "'password'", paren),
        Form("passphrase", "line", "'passphrase'", phrase),
        Form("otp_token", "token", "'otp_token'", otp),
        Form("numeric_str", "line", "'db.password'", numeric_str),
        Form("double_encoded", "token", "api%255Fkey=REDACTED", double_encoded),
    ]


FORMS = _forms()
#: road -> the largest form it takes (agent ids and paths have no spaces; names no newlines).
ROADS = {
    "exception": "text",
    "status": "text",
    "attribute": "text",
    "span_name": "text",
    "event_name": "text",
    "link": "text",
    "resource": "text",
    "gateway": "text",
    "baggage": "line",
    "run_name": "line",
    "agent_id": "token",
    "session_path": "token",
}
#: Roads whose value is also a metric dimension.
METRIC_ROADS = ("agent_id", "session_path")


def tag(road: str, form: str) -> str:
    return f"tag-{road}-{form}"


def cases() -> list[dict[str, Any]]:
    """One case per (road, form that fits it), each with fresh secrets."""
    out = []
    for road, fit in ROADS.items():
        for form in FORMS:
            if FITS[form.fit] > FITS[fit]:
                continue
            text, secrets = form.make()
            t = tag(road, form.name)
            if road in ("agent_id", "session_path"):
                carrier = f"{t}/{text}" if road == "agent_id" else f"/{t}/{text}"
            else:
                carrier = f"{t} {text}"
            out.append({"road": road, "form": form.name, "tag": t, "text": carrier, "secrets": secrets})
    return out


# --- the scrubber alone: each form, exactly -----------------------------------------------


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_each_form_is_scrubbed_whole_and_says_why(form: Form) -> None:
    text, secrets = form.make()
    for around in ("{}", "failed: {} (retrying)", "a\n{}\nb", "'{}'", '{{"detail": "{}"}}'):
        carried = around.format(text)
        out = scrub_text(carried)
        for secret in secrets:
            assert secret not in out, (carried, out)
        assert form.note in out, (carried, out)


def test_what_a_form_leaves_standing() -> None:
    # The URL keeps its shape, the user and the host; a passphrase runs to the end of its line only.
    assert scrub_text("postgres://app:Pw123456@db:5432/main") == (
        "postgres://app:[Scrubbed due to 'password in URL']@db:5432/main"
    )
    assert scrub_text("passphrase=correct horse battery staple\nnext: 1") == (
        "passphrase=[Scrubbed due to 'passphrase']\nnext: 1"
    )
    assert scrub_text("Client(password=Ab(cSECRET), timeout=3)") == (
        "Client(password=[Scrubbed due to 'password'], timeout=3)"
    )
    assert scrub_text("f(api_key=abc123)") == "f(api_key=[Scrubbed due to 'api_key'])"
    assert scrub_text("x?code=SplxlOBeZQQYbYS6WxSbIA&state=1") == "x?code=[Scrubbed due to 'OAuth code']&state=1"
    assert scrub_text("x?api%25255Fkey=abcdefgh") == "x?api%25255Fkey=REDACTED"  # three rounds
    # Counts and ordinary URLs stay.
    for clean in (
        "max_tokens=100 token_count=5 input_tokens: 7 tokenizer=cl100k",
        "http://host:8080/users/bob@example.com",
        "status_code=200 error_code=ABCDEFGHIJKL status=500 code=internal_server_error",
        "SharedAccessKeyName=Root",
        "Asia/Tokyo",
    ):
        assert scrub_text(clean) == clean


def test_a_secret_name_makes_a_number_secret() -> None:
    out = scrub_attributes(
        {"db.password": 880077665544, "otp_token": "492817", "pin_codes": [1, 2], "gen_ai.usage.input_tokens": 12}
    )
    assert out == {
        "db.password": "[Scrubbed due to 'password']",
        "otp_token": "[Scrubbed due to 'otp_token']",
        "pin_codes": [1, 2],
        "gen_ai.usage.input_tokens": 12,
    }
    assert scrub_attributes({"llm.token_count.prompt": 5, "max_tokens": 7, "enabled_auth": True}) is None


def test_event_names_links_and_the_resource_are_scrubbed() -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import Link, SpanContext

    token = "ghp_" + _rand(36)
    ctx = SpanContext(trace_id=1, span_id=2, is_remote=False)
    resource = Resource({"process.command_line": f"app --token={token}", "service.name": "svc"})
    span = ReadableSpan(
        name="work",
        context=ctx,
        resource=resource,
        events=[Event(f"retry with {token}", {})],
        links=[Link(ctx, {"note": token})],
        status=Status(StatusCode.ERROR, "x"),
    )
    data = scrub_span(span).to_json(indent=None)
    assert token not in data
    assert data.count("Scrubbed due to") == 3
    again = scrub_span(span)  # the resource is scrubbed once and remembered
    assert again.resource is scrub_span(span).resource


# --- every road, end to end -----------------------------------------------------------------

SCRIPT = r"""
import json, os
from urllib.parse import quote
import httpx
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link, Status, StatusCode
import alephant_otel
from alephant_otel import run, session

CASES = json.loads(os.environ["CASES"])
gw, rx = os.environ["GW"], os.environ["RX"]
# The app's own meter provider, with a resource of its own: the package scrubs the metric attributes
# it records, not the resource of a provider it does not own (OTEL_RESOURCE_ATTRIBUTES is for the spans).
meters = MeterProvider(
    [PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=rx + "/v1/metrics"))],
    resource=Resource({"service.name": "forms"}),
)
alephant_otel.configure(gateway_url=gw, trace_file=os.environ["TRACE_FILE"], meter_provider=meters)
tracer = trace.get_tracer("app")
chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
with httpx.Client() as client, tracer.start_as_current_span("anchor") as anchor:
    for case in CASES:
        road, text = case["road"], case["text"]
        if road == "exception":
            try:
                with session():
                    raise RuntimeError(text)
            except RuntimeError:
                pass
        elif road == "status":
            with tracer.start_as_current_span("status") as span:
                span.set_status(Status(StatusCode.ERROR, text))
        elif road == "attribute":
            with tracer.start_as_current_span("attribute") as span:
                span.set_attribute("app.note", text)
        elif road == "span_name":
            tracer.start_span(text).end()
        elif road == "event_name":
            with tracer.start_as_current_span("event") as span:
                span.add_event(text)
        elif road == "link":
            tracer.start_span("linked", links=[Link(anchor.get_span_context(), {"app.note": text})]).end()
        elif road == "gateway":
            with session():
                client.post(gw + "/v1/chat/completions", json=chat)
        elif road == "baggage":
            ctx = propagate.extract({"baggage": "alephant.session.name=" + quote(text, safe="")})
            with tracer.start_as_current_span("inbound", context=ctx):
                pass
        elif road == "run_name":
            with session(), run(name=text):
                pass
        elif road == "agent_id":
            with session(), run(agent_id=text):
                client.post(gw + "/v1/chat/completions", json=chat)
        elif road == "session_path":
            with session(path=text):
                client.post(gw + "/v1/chat/completions", json=chat)
    with tracer.start_as_current_span("numbers") as span:
        span.set_attribute("db.password", int(os.environ["DB_PASSWORD"]))
trace.get_tracer_provider().shutdown()
meters.shutdown()
"""


class _Bodies(QuietHTTPHandler):
    """Any OTLP/HTTP export: keep the raw (decompressed) body by path, answer 200."""

    bodies: list[tuple[str, bytes]]
    lock: threading.Lock

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if (self.headers.get("content-encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        with self.lock:
            self.bodies.append((self.path, body))
        self.send_body(200, b"", "application/x-protobuf")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a decoded OTLP/JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    all_cases = cases()
    db_password = int("9" + _rand(11, string.digits))
    trace_file = tmp_path_factory.mktemp("forms") / "traces.otlp.jsonl"
    handler = type("H", (_Bodies,), {"bodies": [], "lock": threading.Lock()})
    # Keys that name nothing secret (``app.res.jwt`` would blank the value by its name).
    resource = ",".join(
        f"app.res{i}={quote(c['text'], safe='')}" for i, c in enumerate(all_cases) if c["road"] == "resource"
    )
    with GatewayEmulator() as gw, LoopbackServer(QuietHTTPServer(("127.0.0.1", 0), handler)) as rx:
        for i, case in enumerate(c for c in all_cases if c["road"] == "gateway"):
            reason = f"blocked by policy: {case['text']}"
            gw.add_fault(Fault.policy(reason, status=403 if i % 2 else 400), path="/v1/chat/completions")
        env = clean_env(
            GW=gw.url,
            RX=rx.url,
            CASES=json.dumps(all_cases),
            DB_PASSWORD=str(db_password),
            TRACE_FILE=str(trace_file),
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.url,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_RESOURCE_ATTRIBUTES=resource,
        )
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # The secrets really travelled: the gateway got the agent ids, paths and session names.
        sent = json.dumps([dict(r.headers.items()) for r in gw.requests])
        for case in all_cases:
            if case["road"] in METRIC_ROADS:
                assert case["secrets"][0] in sent, case
    bodies = handler.bodies
    traces = [b for p, b in bodies if p == "/v1/traces"]
    metrics = [b for p, b in bodies if p == "/v1/metrics"]
    assert traces and metrics, [p for p, _ in bodies]
    where = {f"OTLP trace body {i}": b for i, b in enumerate(traces)}
    where |= {f"OTLP metric body {i}": b for i, b in enumerate(metrics)}
    where["trace file"] = trace_file.read_bytes()
    docs = [json.loads(line) for line in where["trace file"].splitlines()]
    return {
        "cases": all_cases,
        "where": where,
        "strings": [s for doc in docs for s in _strings(doc)],
        "metrics": b"".join(metrics),
        "db_password": db_password,
        "stderr": done.stderr,
    }


def test_the_search_can_find_a_secret(exported: dict[str, Any]) -> None:
    # The tags of every case reached the exports: the secrets beside them were there to find.
    text = "\n".join(exported["strings"])
    missing = [c["tag"] for c in exported["cases"] if c["tag"] not in text]
    assert not missing


@pytest.mark.parametrize("road", list(ROADS))
def test_no_secret_of_any_form_leaves_by_this_road(road: str, exported: dict[str, Any]) -> None:
    where = exported["where"]
    leaks = [
        f"{c['form']}: {leak}"
        for c in exported["cases"]
        if c["road"] == road
        for secret in c["secrets"]
        for leak in find_leaks(secret, where)
    ]
    assert not leaks, f"{road}: secrets exported:\n" + "\n".join(leaks)


@pytest.mark.parametrize("road", list(ROADS))
def test_each_scrubbed_place_says_why(road: str, exported: dict[str, Any]) -> None:
    notes = {f.name: f.note for f in FORMS}
    wrong = []
    for case in (c for c in exported["cases"] if c["road"] == road):
        places = [s for s in exported["strings"] if case["tag"] in s]
        assert places, case["tag"]
        wrong += [(case["form"], s) for s in places if notes[case["form"]] not in s]
    assert not wrong, wrong


@pytest.mark.parametrize("road", METRIC_ROADS)
def test_metric_dimensions_are_scrubbed_and_say_so(road: str, exported: dict[str, Any]) -> None:
    metrics: bytes = exported["metrics"]
    notes = {f.name: f.note for f in FORMS}
    for case in (c for c in exported["cases"] if c["road"] == road):
        at = metrics.find(case["tag"].encode())
        assert at >= 0, case["tag"]
        window = metrics[at : at + len(case["text"]) + 80]
        assert notes[case["form"]].encode() in window, (case["form"], window)


def test_a_number_under_a_secret_name_leaves_nowhere(exported: dict[str, Any]) -> None:
    value: int = exported["db_password"]
    for name, data in exported["where"].items():
        assert str(value).encode() not in data, name
        assert b"\x18" + _varint(value) not in data, name  # an OTLP int_value
    assert "[Scrubbed due to 'password']" in exported["strings"]
