"""The GenAI names on our spans, checked against the vendored semconv model (tests/fixtures/semconv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import _names as n
from alephant_otel import run, session, tool
from alephant_otel.record._requestbody import provider_for
from alephant_otel.record._semconv import WELL_KNOWN_PROVIDERS
from alephant_otel.testing import Fault, GatewayEmulator

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
            if group.get("type") == "event":
                metrics.add(group["name"])  # events and metrics: names that are not attributes
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
            assert isinstance(value, int) and not isinstance(value, bool), key
        elif kind == "double":
            assert isinstance(value, float), key
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


PARAMS = (
    "gen_ai.request.temperature",
    "gen_ai.request.max_tokens",
    "gen_ai.request.top_p",
    "gen_ai.request.stop_sequences",
    "gen_ai.request.seed",
    "gen_ai.request.choice.count",
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"temperature": {"type": "number"}, "n": {"type": "integer"}}},
    },
}


def _request_spans(spans: InMemorySpanExporter) -> list[dict[str, Any]]:
    found = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]
    return [dict(s.attributes) for s in sorted(found, key=lambda s: s.start_time)]


def _params(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in PARAMS if k in attrs}


def test_request_parameters_when_sent_per_the_model(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    assert set(PARAMS) <= set(REGISTRY)
    oai = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-x", max_retries=0)
    with oai, claude, session("sess_params"):
        oai.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            temperature=0.25,
            max_completion_tokens=50,
            top_p=0.9,
            stop=["END", "STOP"],
            seed=42,
            n=2,
        )
        list(
            oai.chat.completions.create(
                model=MODEL, messages=MESSAGES, max_tokens=20, stop="x", temperature=0, stream=True
            )
        )
        oai.responses.create(model=MODEL, input="hi", max_output_tokens=64, temperature=0.5, top_p=0.75)
        claude.messages.create(
            model="anthropic/claude-3-5-haiku",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stop_sequences=["\n\nHuman:"],
            # anthropic 2.x dropped these arguments; older SDKs and other clients still send them.
            extra_body={"temperature": 0.7, "top_p": 0.95},
        )
        # Nothing set but messages and model; a tool schema's nested "temperature" and "n" are not parameters.
        oai.chat.completions.create(model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL], n=1)  # type: ignore[list-item]
    chat, stream, responses, message, plain = _request_spans(spans)
    assert _params(chat) == {
        "gen_ai.request.temperature": 0.25,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ("END", "STOP"),
        "gen_ai.request.seed": 42,
        "gen_ai.request.choice.count": 2,
    }
    assert _params(stream) == {
        "gen_ai.request.temperature": 0.0,
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.stop_sequences": ("x",),
    }
    assert stream["gen_ai.request.stream"] is True
    assert _params(responses) == {
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.top_p": 0.75,
    }
    assert _params(message) == {
        "gen_ai.request.temperature": 0.7,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.top_p": 0.95,
        "gen_ai.request.stop_sequences": ("\n\nHuman:",),
    }
    assert message["gen_ai.provider.name"] == "anthropic"
    assert _params(plain) == {}  # n=1 is the default: not recorded
    for attrs in (chat, stream, responses, message, plain):
        _check_against_model(attrs)


def test_a_request_without_response_still_says_what_it_asked_for(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    gateway.add_fault(Fault.timeout(3.0))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0, timeout=0.3)
    with client, session("sess_timeout"), pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=1.5, seed=7)
    (attrs,) = _request_spans(spans)
    assert "error.type" in attrs
    assert _params(attrs) == {"gen_ai.request.temperature": 1.5, "gen_ai.request.seed": 7}
    _check_against_model(attrs)


def test_small_and_large_bodies_say_the_same(gateway: GatewayEmulator, spans: InMemorySpanExporter) -> None:
    # A small body is parsed whole when sent; one past PARSE_WHOLE is searched for its model and
    # probed for its parameters at the response. Both must record the same names and values.
    from alephant_otel.record._requestbody import PARSE_WHOLE

    long_prompt = [{"role": "user", "content": "x" * (PARSE_WHOLE + 1000)}]
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    with client, session("sess_sizes"):
        for messages in (MESSAGES, long_prompt):
            client.chat.completions.create(
                model=MODEL, messages=messages, temperature=0.3, seed=11, stop=["END"],  # type: ignore[arg-type]
                tools=[WEATHER_TOOL],  # type: ignore[list-item]
            )
        client.chat.completions.create(model=MODEL, messages=long_prompt)  # type: ignore[arg-type]
    small, large, bare = _request_spans(spans)
    expected = {"gen_ai.request.temperature": 0.3, "gen_ai.request.seed": 11, "gen_ai.request.stop_sequences": ("END",)}
    assert _params(small) == _params(large) == expected
    assert _params(bare) == {}
    assert small["gen_ai.request.model"] == large["gen_ai.request.model"] == bare["gen_ai.request.model"] == MODEL
    for attrs in (small, large, bare):
        _check_against_model(attrs)
