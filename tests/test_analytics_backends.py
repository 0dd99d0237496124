"""Tempo, Jaeger and Phoenix adapters against a real loopback HTTP server.

The server (stdlib ``http.server`` in a thread) serves the responses stored in
``tests/fixtures/`` and checks the query parameters the adapter sends. The
fixtures were produced by ``fixtures/make_backend_fixtures.py`` from the same
SDK spans as the trace-file tests, in the formats those projects document:

- Tempo: grafana.com/docs/tempo/latest/api_docs, "Search" (``GET /api/search``
  with ``q`` TraceQL, ``start``/``end`` unix seconds, ``limit``) and "Query"
  (``GET /api/traces/<traceID>``, v1: OTLP under ``batches``, base64 ids).
- Jaeger: jaegertracing.io docs "APIs" > query service "HTTP JSON"
  (``GET /api/services``; ``GET /api/traces?service&tags&start&end&limit``,
  the ``model/json`` trace structure).
- Phoenix: Phoenix REST API operation ``getSpans``
  (``GET /v1/projects/{project_identifier}/spans``, ``{"data", "next_cursor"}``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest
from fixtures import backend_server
from fixtures.analytics_data import T0, headless_session, support_session
from fixtures.backend_server import BackendServer as _Server
from fixtures.backend_server import Route, jaeger_route, load, phoenix_route, tempo_route

from alephant_otel.analytics import SourceError, load_sessions, read_sessions
from alephant_otel.cli._main import main

#: The fixture starting loopback backends (shared with the other backend tests).
serve = backend_server.serve

LATER = T0 + 3600 * 10**9


def expect_same_as_sent(sessions: list) -> None:
    by = {s.session_id: s for s in sessions}
    assert set(by) == {"sess_a", "sess_b"}
    for sid, spec in (("sess_a", support_session()), ("sess_b", headless_session())):
        s, reqs = by[sid], spec.all_requests()
        assert s.request_count == len(reqs)
        assert s.cost_usd == pytest.approx(sum(r.cost for r in reqs), abs=1e-12)
        assert (s.input_tokens, s.output_tokens) == (sum(r.inp for r in reqs), sum(r.out for r in reqs))
        assert s.retries == sum(1 for r in reqs if r.retry)
        assert s.intercepted == sum(1 for r in reqs if r.intercepted)
        lat = {r.request_id: r.latency_s for r in s.requests}
        assert all(lat[r.request_id] == pytest.approx(r.dur_ms / 1000, abs=1e-6) for r in reqs)
    a = by["sess_a"]
    assert a.status == "intercepted"
    assert a.span_present
    assert [r.run_id for r in a.walk_runs()] == ["run_triage", "run_search", "run_writer"]
    assert a.find_run("run_search").parent_run_id == "run_triage"
    assert [e.reason for e in a.policy_events] == ["PII detected in prompt"]
    assert by["sess_b"].runs[0].runs[0].run_id == "run_b2"


def test_tempo(serve: Callable[[Route], _Server]) -> None:
    srv = serve(tempo_route)
    result = read_sessions(f"tempo+{srv.url}", now_ns=LATER, since_ns=T0 - 10**9, until_ns=T0 + 10**11)
    expect_same_as_sent(result.sessions)
    path, query, _ = srv.requests[0]
    assert path == "/api/search"
    assert query["start"] == [str(T0 // 10**9 - 1)]
    assert query["limit"] == ["1000"]
    assert int(query["end"][0]) >= (T0 + 10**11) // 10**9
    assert len(srv.requests) == 1 + len(load("tempo_search.json")["traces"])


def test_tempo_show_narrows_the_search(serve: Callable[[Route], _Server], capsys: pytest.CaptureFixture[str]) -> None:
    srv = serve(tempo_route)
    assert main(["sessions", "show", "sess_a", "--source", f"tempo+{srv.url}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["session"]["request_count"] == 5
    assert doc["source"] == f"tempo at {srv.url}"
    assert srv.requests[0][1]["q"] == ['{ span.alephant.session.id = "sess_a" }']


def test_jaeger(serve: Callable[[Route], _Server]) -> None:
    srv = serve(jaeger_route)
    sessions = load_sessions(f"jaeger+{srv.url}", now_ns=LATER)
    expect_same_as_sent(sessions)
    searched = [(q["service"][0], json.loads(q["tags"][0])) for p, q, _ in srv.requests if p == "/api/traces"]
    assert ("analytics-test", {"alephant.span.kind": "request"}) in searched
    assert ("analytics-test", {"alephant.span.kind": "session"}) in searched


def test_jaeger_time_range_in_microseconds(serve: Callable[[Route], _Server]) -> None:
    srv = serve(jaeger_route)
    read_sessions(f"jaeger+{srv.url}", since_ns=T0, until_ns=T0 + 5 * 10**9, session_id="sess_a")
    (_, q, _) = next(r for r in srv.requests if r[0] == "/api/traces")
    assert q["start"] == [str(T0 // 1000)]
    assert q["end"] == [str((T0 + 5 * 10**9) // 1000)]
    assert json.loads(q["tags"][0]) == {"alephant.session.id": "sess_a"}


def test_phoenix(serve: Callable[[Route], _Server], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_API_KEY", "px-key")
    srv = serve(phoenix_route)
    sessions = load_sessions(f"phoenix+{srv.url}?project=support-bot", now_ns=LATER)
    expect_same_as_sent(sessions)
    assert len(srv.requests) == 2  # followed next_cursor once
    assert srv.requests[0][2]["Authorization"] == "Bearer px-key"


def test_phoenix_unknown_project_is_one_line(
    serve: Callable[[Route], _Server], capsys: pytest.CaptureFixture[str]
) -> None:
    srv = serve(phoenix_route)
    assert main(["sessions", "list", "--source", f"phoenix+{srv.url}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"alephant-otel: phoenix at {srv.url} answered 404")
    assert err.count("\n") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["tempo", "jaeger", "phoenix"])
def test_unreachable_backend(scheme: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(SourceError, match=f"cannot reach {scheme} at {url}"):
        load_sessions(f"{scheme}+{url}")
    assert main(["sessions", "list", "--source", f"{scheme}+{url}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"alephant-otel: cannot reach {scheme} at {url}")
    assert err.count("\n") == 1


def test_backend_sending_garbage(serve: Callable[[Route], _Server]) -> None:
    srv = serve(lambda path, q: (200, b"<html>not json</html>"))
    with pytest.raises(SourceError, match="not JSON"):
        load_sessions(f"tempo+{srv.url}")


def test_a_redirect_is_reported_and_not_followed(
    serve: Callable[[Route], _Server], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Following it would send Phoenix's API key to whatever host the redirect names."""
    monkeypatch.setenv("PHOENIX_API_KEY", "px-secret")
    elsewhere = serve(phoenix_route)
    srv = serve(lambda path, q: (302, b""))
    srv.location = elsewhere.url + "/v1/projects/support-bot/spans"
    assert main(["sessions", "list", "--source", f"phoenix+{srv.url}?project=support-bot"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"alephant-otel: phoenix at {srv.url} answered 302 for /v1/projects/support-bot/spans: "
        f"a redirect to {srv.location}: give that URL in --source\n"
    )
    assert elsewhere.requests == []


def test_a_json_document_that_is_not_an_object_is_one_line(
    serve: Callable[[Route], _Server], capsys: pytest.CaptureFixture[str]
) -> None:
    srv = serve(lambda path, q: (200, [1, 2]))
    assert main(["sessions", "list", "--source", f"jaeger+{srv.url}"]) == 1
    assert capsys.readouterr().err == (
        f"alephant-otel: jaeger at {srv.url} sent an unexpected JSON document for /api/services (not an object)\n"
    )
