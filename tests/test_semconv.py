"""The GenAI names on our spans, checked against the vendored semconv model (tests/fixtures/semconv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import _names as n
from alephant_otel import run, session, tool
from alephant_otel.record._requestbody import provider_for
from alephant_otel.record._semconv import WELL_KNOWN_PROVIDERS
from alephant_otel.testing import GatewayEmulator

MODEL_DIR = Path(__file__).parent / "fixtures" / "semconv"
MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hi"}]


def _registry() -> tuple[dict[str, dict[str, Any]], set[str]]:
    attrs: dict[str, dict[str, Any]] = {}
    metrics: set[str] = set()
    for path in MODEL_DIR.glob("*.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            if group.get("type") == "metric":
                metrics.add(group["metric_name"])
                continue
            for attr in group.get("attributes") or ():
                if "id" in attr:
                    attrs[attr["id"]] = attr
    return attrs, metrics


REGISTRY, METRICS = _registry()
#: Namespaces the conventions own: every name of ours in them must be in the model.
OWNED = ("gen_ai.", "server.", "user.", "openai.")


def members(attr: str) -> set[str]:
    kind = REGISTRY[attr]["type"]
    return {m["value"] for m in kind["members"]} if isinstance(kind, dict) else set()


def test_the_model_is_the_vendored_version() -> None:
    assert "953276ff4d0404cdddb515e7418e6a2cf43c2b0b" in (MODEL_DIR / "README.md").read_text()
    assert "gen_ai.request.stream" in REGISTRY and "gen_ai.tool.call.id" in REGISTRY


def test_every_convention_name_in_names_is_in_the_model() -> None:
    ours = {v for k, v in vars(n).items() if k.isupper() and isinstance(v, str) and v.startswith(OWNED)}
    assert {"gen_ai.tool.name", "user.id", "server.address", "openai.api.type"} <= ours
    assert sorted(ours - set(REGISTRY) - METRICS) == []
    assert {n.METRIC_TOKEN_USAGE, n.METRIC_OPERATION_DURATION} <= METRICS
    assert n.OPERATION_EXECUTE_TOOL in members(n.GEN_AI_OPERATION_NAME)
    assert n.OPERATION_INVOKE_AGENT in members(n.GEN_AI_OPERATION_NAME)


def test_provider_prefixes_map_to_well_known_values() -> None:
    known = members(n.GEN_AI_PROVIDER_NAME)
    assert set(WELL_KNOWN_PROVIDERS.values()) <= known
    for prefix, value in WELL_KNOWN_PROVIDERS.items():
        assert provider_for(f"{prefix}/some-model", "/v1/chat/completions") == value
    assert provider_for("openai/gpt-4o", "/v1/chat/completions") == "openai"
    assert provider_for("Bedrock/anthropic.claude-3", "/v1/chat/completions") == "aws.bedrock"
    assert provider_for("somegateway/model", "/v1/chat/completions") == "somegateway"  # others stay as they are


def _check_against_model(attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        if not key.startswith(OWNED):
            continue
        assert key in REGISTRY, key
        kind = REGISTRY[key]["type"]
        if isinstance(kind, dict):
            assert value in members(key) or key == n.GEN_AI_PROVIDER_NAME, (key, value)
        elif kind == "int":
            assert isinstance(value, int), key
        elif kind == "boolean":
            assert isinstance(value, bool), key
        elif kind == "string":
            assert isinstance(value, str), key
        elif kind == "string[]":
            assert isinstance(value, tuple) and all(isinstance(x, str) for x in value), key


def test_request_tool_and_run_spans_use_model_names_and_types(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_sc", user_id="u-1"), run("run_sc", agent_id="triage"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
        client.responses.create(model=MODEL, input="hi")
        with tool("lookup", call_id="call_1", description="Looks up"):
            pass
    reqs = sorted(
        (s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"),
        key=lambda s: s.start_time,
    )
    chat, stream, responses = (dict(s.attributes) for s in reqs)
    port = int(gateway.url.rsplit(":", 1)[1])
    for a in (chat, stream, responses):
        assert (a["server.address"], a["server.port"]) == ("127.0.0.1", port)
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert chat["gen_ai.response.finish_reasons"] == stream["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat["openai.api.type"] == stream["openai.api.type"] == "chat_completions"
    assert responses["openai.api.type"] == "responses"
    assert stream["gen_ai.request.stream"] is True and "gen_ai.request.stream" not in chat
    for s in spans.get_finished_spans():
        _check_against_model(dict(s.attributes))
        json.dumps(dict(s.attributes), default=list)  # plain values only
    assert any(s.attributes.get("gen_ai.tool.description") == "Looks up" for s in spans.get_finished_spans())


@pytest.mark.parametrize("name", ["user.id", "gen_ai.tool.call.id", "gen_ai.request.stream", "openai.api.type"])
def test_names_we_rely_on_are_not_deprecated_in_the_model(name: str) -> None:
    assert "deprecated" not in REGISTRY[name]
