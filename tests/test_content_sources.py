"""Captured conversations read back from Tempo, Jaeger and Phoenix (real loopback servers).

The recorded backend fixtures, with the content attributes added to every request span in each
backend's own format; each source must hand them to the request model (one attribute table).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fixtures import backend_server
from fixtures.analytics_data import T0
from fixtures.backend_server import BackendServer, Route, jaeger_route, phoenix_route, tempo_route

from alephant_otel import _names as n
from alephant_otel.analytics import load_sessions
from alephant_otel.analytics._conversation import conversation

serve = backend_server.serve
LATER = T0 + 3600 * 10**9


def _said(request_id: str) -> str:
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"hello from {request_id}"}]}])


def _tempo(path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
    status, body = tempo_route(path, query)
    for batch in body.get("batches", ()) if isinstance(body, dict) else ():
        for scope in batch["scopeSpans"]:
            for sp in scope["spans"]:
                attrs = {kv["key"]: kv["value"].get("stringValue") for kv in sp["attributes"]}
                if attrs.get(n.ATTR_SPAN_KIND) == "request":
                    value = {"stringValue": _said(str(attrs[n.ATTR_REQUEST_ID]))}
                    sp["attributes"].append({"key": n.GEN_AI_INPUT_MESSAGES, "value": value})
    return status, body


def _jaeger(path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
    status, body = jaeger_route(path, query)
    for trace in body["data"] if path == "/api/traces" and status == 200 else ():
        for sp in trace["spans"]:
            tags = {t["key"]: t["value"] for t in sp["tags"]}
            if tags.get(n.ATTR_SPAN_KIND) == "request":
                value = _said(tags[n.ATTR_REQUEST_ID])
                sp["tags"].append({"key": n.GEN_AI_INPUT_MESSAGES, "type": "string", "value": value})
    return status, body


def _phoenix(path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
    status, body = phoenix_route(path, query)
    for sp in body.get("data", ()) if isinstance(body, dict) else ():
        attrs = sp["attributes"]
        if attrs.get(n.ATTR_SPAN_KIND) == "request":
            attrs[n.GEN_AI_INPUT_MESSAGES] = _said(attrs[n.ATTR_REQUEST_ID])
    return status, body


@pytest.mark.parametrize(
    ("route", "scheme", "suffix"),
    [(_tempo, "tempo", ""), (_jaeger, "jaeger", ""), (_phoenix, "phoenix", "?project=support-bot")],
)
def test_every_source_carries_the_conversation(
    serve: Callable[[Route], BackendServer], route: Route, scheme: str, suffix: str
) -> None:
    srv = serve(route)
    sessions = load_sessions(f"{scheme}+{srv.url}{suffix}", now_ns=LATER)
    requests = [r for s in sessions for r in s.requests]
    assert requests
    for r in requests:
        assert [(t.role, t.text) for t in conversation(r)] == [("user", f"hello from {r.request_id}")]
