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
