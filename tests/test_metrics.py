"""GenAI metrics: token usage, duration and cost, dimensioned by model/agent/path, never by ids."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from alephant_otel import run, session
from alephant_otel.testing import GatewayEmulator


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_token_duration_and_cost_metrics(gateway: GatewayEmulator, metrics: InMemoryMetricReader, spans) -> None:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0) as client:
        for i in range(3):
            with session(f"sess_m{i}", path="/support"), run(f"run_m{i}", agent_id="triage"):
                resp = client.chat.completions.create(
                    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "a b c d"}]
                )
    points = _points(metrics)
    tokens = points["gen_ai.client.token.usage"]
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens}
    assert by_type["input"].sum == 3 * resp.usage.prompt_tokens
    assert by_type["output"].sum == 3 * resp.usage.completion_tokens
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 3
    (cost,) = points["alephant.client.cost"]
    assert cost.value == pytest.approx(
        sum(
            s.attributes["alephant.cost.usd"] for s in spans.get_finished_spans() if "alephant.cost.usd" in s.attributes
        )
    )
    for p in [*tokens, duration, cost]:
        attrs = dict(p.attributes)
        assert attrs["alephant.agent.id"] == "triage"
        assert attrs["alephant.session.path"] == "/support"
        assert attrs["gen_ai.request.model"] == "openai/gpt-4o-mini"
        # Never unbounded ids: one series for three sessions.
        unbounded = {"alephant.session.id", "alephant.run.id", "alephant.request.id", "gen_ai.conversation.id"}
        assert not unbounded & set(attrs)


def test_failed_calls_carry_error_type_on_the_duration(gateway: GatewayEmulator, metrics: InMemoryMetricReader) -> None:
    from alephant_otel.testing import Fault

    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-x", max_retries=0)
    gateway.add_fault(Fault.status(503))
    gateway.add_fault(Fault.stream_error(2, error_type="server_error"))
    with client, session("sess_errors"):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
        with pytest.raises(openai.APIError):
            for _ in client.chat.completions.create(
                model="openai/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "a"}]
            ):
                pass
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    durations = _points(metrics)["gen_ai.client.operation.duration"]
    # The HTTP status when HTTP failed; the body's error type when a 200 stream reported one.
    assert sorted(str(dict(p.attributes).get("error.type")) for p in durations) == ["503", "None", "server_error"]


def test_gateway_requests_that_are_no_model_call_stay_out_of_the_genai_histograms(
    gateway: GatewayEmulator, metrics: InMemoryMetricReader, spans
) -> None:
    # The semantic conventions require gen_ai.operation.name on both histograms: a model list or a
    # token count has none, so it would be a series no GenAI dashboard can place.
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-x", max_retries=0)
    with client, httpx.Client() as plain, session("sess_no_op"):
        plain.get(gateway.url + "/v1/models")
        client.messages.count_tokens(model="claude-3-5-haiku-latest", messages=[{"role": "user", "content": "a"}])
        client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=10, messages=[{"role": "user", "content": "a"}]
        )
    assert len([s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "request"]) == 3
    points = _points(metrics)
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1 and dict(duration.attributes)["gen_ai.operation.name"] == "chat"
    assert {dict(p.attributes)["gen_ai.operation.name"] for p in points["gen_ai.client.token.usage"]} == {"chat"}


GLOBAL_LATER = """
import openai, alephant_otel
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from alephant_otel.testing import GatewayEmulator

def calls(reader):
    data = reader.get_metrics_data()
    return sum(p.count for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics
               for m in sm.metrics if m.name == "gen_ai.client.operation.duration" for p in m.data.data_points)

with GatewayEmulator() as gw:
    alephant_otel.configure(gateway_url=gw.url)  # no meter provider anywhere yet: nothing is recorded
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-x", max_retries=0)
    hi = [{"role": "user", "content": "hi"}]
    ask = lambda: client.chat.completions.create(model="openai/gpt-4o-mini", messages=hi)
    ask()
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))  # the app sets one later
    ask()
    ask()
    print(calls(reader))
"""


def test_a_meter_provider_set_after_configure_gets_the_metrics() -> None:
    """With no meter provider the recording is skipped; one set later gets every call from then on."""
    import subprocess
    import sys

    from _util import clean_env

    out = subprocess.run(
        [sys.executable, "-c", GLOBAL_LATER], env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
