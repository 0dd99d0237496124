"""The pytest plugin, used the way a user would: a test file in another project."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_alephant_gateway_fixture_in_a_users_suite(pytester) -> None:
    pytester.makepyfile(
        """
        import openai
        from alephant_otel import run, session

        def test_triage_sends_the_session(alephant_gateway):
            client = openai.OpenAI(base_url=alephant_gateway.openai_base_url, api_key="test", max_retries=0)
            with session("sess_user"), run(agent_id="triage"):
                client.chat.completions.create(
                    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
            assert alephant_gateway.requests[0].headers["alephant-session-id"] == "sess_user"
            assert alephant_gateway.requests[0].headers["Alephant-Agent-Id"] == "triage"
            (span,) = alephant_gateway.request_spans
            assert span.attributes["alephant.session.id"] == "sess_user"
            assert span.attributes["gen_ai.usage.input_tokens"] == 1

        def test_each_test_starts_empty(alephant_gateway):
            assert alephant_gateway.requests == []
            assert alephant_gateway.spans == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


# The code under test configures alephant_otel itself, as an app does at start-up.
_APP = '''
import openai
import alephant_otel

def triage(base_url, **configure_kwargs):
    """The code under test: an app that configures alephant_otel when it starts."""
    alephant_otel.configure(**configure_kwargs)
    with openai.OpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
        with alephant_otel.session("sess_user"), alephant_otel.run(agent_id="triage"):
            client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])

def triage_instrumented(base_url, provider):
    """Another app: it owns its provider and uses the instrumentor."""
    alephant_otel.AlephantInstrumentor().instrument(tracer_provider=provider)
    try:
        with openai.OpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
            with alephant_otel.session("sess_user"), alephant_otel.run(agent_id="triage"):
                client.chat.completions.create(
                    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    finally:
        alephant_otel.AlephantInstrumentor().uninstrument()
'''

_CHECK = '''
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

def assert_sent_and_recorded(gateway):
    (request,) = gateway.requests
    assert request.headers["alephant-session-id"] == "sess_user"
    assert request.headers["Alephant-Agent-Id"] == "triage"
    assert "baggage" not in request.headers
    (span,) = gateway.request_spans
    assert span.attributes["alephant.session.id"] == "sess_user"
    assert span.attributes["alephant.request.id"] == request.headers["x-request-id"]
    assert {s.attributes["alephant.span.kind"] for s in gateway.spans} == {"session", "run", "request"}

def own_provider():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter
'''


def run_user_suite(pytester, test_app: str, passed: int) -> None:
    """Run ``test_app`` (with the app and checks above) as a user's suite, in its own process."""
    pytester.makepyfile(app=_APP, checks=_CHECK, test_app=test_app)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=passed)


def test_fixture_whatever_the_code_under_test_configures(pytester) -> None:
    run_user_suite(pytester, """
        from app import triage
        from checks import assert_sent_and_recorded, own_provider

        def test_configure_with_the_defaults(alephant_gateway):
            triage(alephant_gateway.openai_base_url)
            assert_sent_and_recorded(alephant_gateway)

        def test_configure_from_the_environment(alephant_gateway, monkeypatch):
            monkeypatch.setenv("ALEPHANT_GATEWAY_URL", "https://gateway.example.com")
            triage(alephant_gateway.openai_base_url)
            assert_sent_and_recorded(alephant_gateway)

        def test_configure_with_the_apps_own_provider(alephant_gateway):
            provider, exporter = own_provider()
            triage(alephant_gateway.openai_base_url, tracer_provider=provider)
            assert_sent_and_recorded(alephant_gateway)
            assert [s.name for s in exporter.get_finished_spans()] == [s.name for s in alephant_gateway.spans]
        """, passed=3)


def test_fixture_with_the_instrumentor_and_the_apps_own_provider(pytester) -> None:
    run_user_suite(pytester, """
        from app import triage_instrumented
        from checks import assert_sent_and_recorded, own_provider

        def test_instrumentor_with_the_apps_own_provider(alephant_gateway):
            provider, exporter = own_provider()
            triage_instrumented(alephant_gateway.openai_base_url, provider)
            assert_sent_and_recorded(alephant_gateway)
            assert [s.name for s in exporter.get_finished_spans()] == [s.name for s in alephant_gateway.spans]
        """, passed=1)


def test_fixture_sees_the_global_providers_spans_after_a_test_configured_another(pytester) -> None:
    run_user_suite(pytester, """
        import alephant_otel
        from opentelemetry import trace
        from checks import own_provider

        def test_an_app_with_its_own_provider_and_no_fixture():
            alephant_otel.configure(tracer_provider=own_provider()[0])

        def test_a_span_of_the_global_provider(alephant_gateway):
            with trace.get_tracer("user").start_as_current_span("mine"):
                pass
            assert [s.name for s in alephant_gateway.spans] == ["mine"]
        """, passed=2)
