"""Sessions that span processes, baggage scoping, and carrying context to threads and queues."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from _util import EXAMPLES, clean_env, wait_for
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import attach_carrier, bind_context, context_carrier, current, run, session
from alephant_otel.testing import GatewayEmulator, OtlpReceiver


@pytest.fixture
def worker(gateway: GatewayEmulator):
    """Service B from examples/two_services.py, a real second process exporting OTLP to a receiver."""
    with OtlpReceiver() as rx:
        env = clean_env(ALEPHANT_GATEWAY_URL=gateway.url, OTEL_SERVICE_NAME="worker", OTEL_TRACES_EXPORTER="otlp",
                        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
                        OTEL_BSP_SCHEDULE_DELAY="50")
        proc = subprocess.Popen([sys.executable, str(EXAMPLES / "two_services.py"), "worker"],
                                stdout=subprocess.PIPE, text=True, env=env, cwd=str(EXAMPLES))
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            yield f"http://127.0.0.1:{port}", rx
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def test_two_processes_share_one_session(gateway: GatewayEmulator, worker, spans: InMemorySpanExporter) -> None:
    url, rx = worker
    with session("sess_x", name="Escalation", path="/support/escalate"), run("run_api", agent_id="api"):
        with httpx.Client() as client:
            answer = client.post(url + "/task", json={"task": "draft a reply"}).json()
    assert answer["session_id"] == "sess_x"
    assert answer["parent_run_id"] == "run_api"
    (req,) = gateway.requests  # made by the worker process
    assert req.headers["alephant-session-id"] == "sess_x"
    assert req.headers["alephant-session-path"] == "/support/escalate"
    assert req.headers["alephant-agent-id"] == "worker"
    assert req.headers["alephant-run-id"] == answer["run_id"] != "run_api"
    ours = {s.context.trace_id for s in spans.get_finished_spans()}
    remote = wait_for(lambda: [s for s in rx.spans if s.attributes.get("alephant.span.kind") == "request"])
    assert remote and {int(s.trace_id, 16) for s in remote} <= ours  # B's spans join A's trace
    assert remote[0].attributes["alephant.run.parent_id"] == "run_api"


def test_scoping_switch_keeps_alephant_baggage_off_other_hosts(gateway: GatewayEmulator, tracer_provider) -> None:
    with GatewayEmulator() as internal, GatewayEmulator() as third_party:
        # All three listen on 127.0.0.1: a host:port entry tells the internal one apart.
        internal_host = internal.url.removeprefix("http://")
        internal_url = internal.url
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider, baggage_hosts=[internal_host])
        try:
            with httpx.Client() as client, session("sess_scope"), run("run_scope", agent_id="s"):
                import opentelemetry.context as otel_context
                from opentelemetry import baggage
                token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
                try:
                    client.get(internal_url + "/v1/models")
                    client.get(third_party.url + "/v1/models")
                    client.get(gateway.url + "/v1/models")
                finally:
                    otel_context.detach(token)
        finally:
            alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
        assert "alephant.session.id=sess_scope" in internal.requests[0].headers["baggage"]
        for req in (third_party.requests[0], gateway.requests[0]):
            assert "alephant." not in req.headers.get("baggage", "")
            assert "tenant=acme" in req.headers["baggage"]  # other baggage untouched
        assert third_party.requests[0].headers.get("alephant-session-id") is None
        assert gateway.requests[0].headers["alephant-session-id"] == "sess_scope"


def test_default_propagation_sends_baggage_everywhere_but_the_gateway(
    gateway: GatewayEmulator, other_server: GatewayEmulator
) -> None:
    """Without the switch, OTel's W3C propagation applies to other hosts (documented in the README);
    the gateway gets the alephant-* headers instead of the same ids again as baggage."""
    from opentelemetry import baggage
    from opentelemetry import context as otel_context

    with httpx.Client() as client, session("sess_default"):
        client.get(other_server.url + "/v1/models")
        client.get(gateway.url + "/v1/models")
        token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            client.get(gateway.url + "/v1/models")
        finally:
            otel_context.detach(token)
    assert "alephant.session.id=sess_default" in other_server.requests[0].headers["baggage"]
    first, second = gateway.requests
    assert first.headers["alephant-session-id"] == "sess_default"
    assert "baggage" not in first.headers  # nothing but alephant entries: no header at all
    assert second.headers["baggage"] == "tenant=acme"  # other entries still reach the gateway


def test_bind_context_into_thread_pool() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = []
        for i in range(20):
            with session(f"sess_b{i}"), run(f"run_b{i}"):
                results.append((i, pool.submit(bind_context(lambda: (current().session_id, current().run_id)))))
        assert [f.result() for _, f in results] == [(f"sess_b{i}", f"run_b{i}") for i, _ in results]
        assert pool.submit(lambda: current().session_id).result() is None


def test_carrier_through_a_job_queue_message(gateway: GatewayEmulator) -> None:
    with session("sess_job", name="Nightly sync"), run("run_enqueue", agent_id="scheduler"):
        message = json.dumps({"job": "sync", "otel": context_carrier()})
    assert current().session_id is None
    job = json.loads(message)
    with attach_carrier(job["otel"]) as ids, run(agent_id="sync-worker"), httpx.Client() as client:
        assert ids.session_id == "sess_job"
        client.get(gateway.url + "/v1/models")
    (req,) = gateway.requests
    assert req.headers["alephant-session-id"] == "sess_job"
    assert req.headers["alephant-session-name"] == "Nightly sync"
    assert req.headers["alephant-agent-id"] == "sync-worker"


@pytest.mark.parametrize("other_entry", [False, True])
@pytest.mark.parametrize("scoped", [False, True])
def test_an_sdk_that_propagates_itself_sends_no_alephant_baggage_where_it_does_not_belong(
    scoped: bool, other_entry: bool, gateway: GatewayEmulator, other_server: GatewayEmulator, tracer_provider
) -> None:
    """The anthropic SDK's own tracing injects baggage when it builds the request, before the hook runs."""
    import anthropic
    from opentelemetry import baggage
    from opentelemetry import context as otel_context

    def call(url: str) -> None:
        with anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as client:
            assert client.open_telemetry["propagation"] is True  # the SDK's default: it injects by itself
            client.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=5,
                                   messages=[{"role": "user", "content": "hi"}])

    alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider,
                            baggage_hosts=[] if scoped else None)
    try:
        with session("sess_sdk_propagates"), run("run_sdk", agent_id="a"):
            token = otel_context.attach(baggage.set_baggage("tenant", "acme") if other_entry
                                        else otel_context.get_current())
            try:
                call(gateway.url)
                call(other_server.url)
            finally:
                otel_context.detach(token)
    finally:
        alephant_otel.configure(gateway_url=gateway.url, tracer_provider=tracer_provider)
    others = "tenant=acme" if other_entry else None
    (to_gateway,) = gateway.requests
    assert to_gateway.headers["alephant-session-id"] == "sess_sdk_propagates"
    assert to_gateway.headers.get("baggage") == others  # the ids go only as alephant-* headers
    (to_other,) = other_server.requests
    if scoped:
        assert to_other.headers.get("baggage") == others  # no internal host listed: nobody gets them
    else:
        assert "alephant.session.id=sess_sdk_propagates" in to_other.headers["baggage"]  # OTel's default
