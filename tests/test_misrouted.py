"""LLM calls that miss the gateway are said once per host, never for other traffic (DESIGN: misrouted calls)."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from alephant_otel import run, session
from alephant_otel.testing import GatewayEmulator

LOGGER = "alephant_otel.wire._request"


def misrouted(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and "not a configured gateway" in r.message]


def test_three_misrouted_calls_give_one_warning_naming_the_host_and_the_setting(
    gateway: GatewayEmulator, other_server: GatewayEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    with openai.OpenAI(base_url=other_server.openai_base_url, api_key="test", max_retries=0) as client:
        with session("sess_miss"), run(agent_id="triage"):
            for _ in range(3):
                client.chat.completions.create(
                    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
                )
            client.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    (message,) = misrouted(caplog)
    assert other_server.url in message
    assert "ALEPHANT_GATEWAY_URL" in message and "configure(gateway_url=...)" in message
    # Scoping is unchanged: the other host still gets no alephant header.
    assert len(other_server.requests) == 4
    for request in other_server.requests:
        assert not [h for h in request.headers if h.lower().startswith("alephant-") or h.lower() == "x-request-id"]
    assert gateway.requests == []


def test_no_warning_for_gateway_calls_non_llm_paths_or_calls_outside_a_session(
    gateway: GatewayEmulator, other_server: GatewayEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    with httpx.Client() as client:
        with session("sess_fine"):
            client.get(other_server.url + "/v1/models")
            client.get(other_server.url + "/health")
            client.post(gateway.url + "/v1/chat/completions",
                        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        # Outside any session there is nothing the gateway would have grouped.
        client.post(other_server.url + "/v1/chat/completions",
                    json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert misrouted(caplog) == []
    assert gateway.requests[0].headers["alephant-session-id"] == "sess_fine"
