"""The emulator plays tool calls: each offered tool once, one per turn, then text.

Driven by the real openai SDK (its parsers and stream helpers are the judge of
the shapes), for chat completions and Responses, streamed and not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from alephant_otel.testing import GatewayEmulator

TOOLS = [
    {"name": "lookup_order", "description": "Find an order",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "limit": {"type": "integer"},
                                                      "note": {"type": "string"}},
                    "required": ["order_id", "limit"]}},
    {"name": "refund", "parameters": {"type": "object", "properties": {
        "mode": {"type": "string", "enum": ["full", "partial"]}}, "required": ["mode"]}},
]  # fmt: skip


@pytest.fixture
def tool_gateway() -> Iterator[GatewayEmulator]:
    with GatewayEmulator(tool_calls=True) as gw:
        yield gw


def _client(gw: GatewayEmulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.openai_base_url, api_key="k", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_calls_each_tool_once_then_answers(tool_gateway: GatewayEmulator, stream: bool) -> None:
    tools: Any = [{"type": "function", "function": t} for t in TOOLS]
    messages: list[Any] = [{"role": "user", "content": "where is order 42"}]
    called = []
    with _client(tool_gateway) as client:
        for _ in range(3):
            if stream:
                with client.chat.completions.stream(model="openai/gpt-4o-mini", messages=messages, tools=tools) as s:
                    for _event in s:
                        pass
                    completion = s.get_final_completion()
            else:
                completion = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, tools=tools)
            choice = completion.choices[0]
            if not choice.message.tool_calls:
                assert choice.finish_reason == "stop" and "order 42" in (choice.message.content or "")
                break
            assert choice.finish_reason == "tool_calls"
            (call,) = choice.message.tool_calls
            called.append((call.function.name, json.loads(call.function.arguments)))
            assert call.id.startswith("call_")
            messages.append(choice.message.model_dump(exclude_none=True))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "done"})
        else:
            pytest.fail("no text answer after every tool was called")
    assert called == [("lookup_order", {"order_id": "where is order 42", "limit": 1}), ("refund", {"mode": "full"})]
    assert len(tool_gateway.requests) == 3


@pytest.mark.parametrize("stream", [False, True])
def test_responses_call_each_tool_once_then_answer(tool_gateway: GatewayEmulator, stream: bool) -> None:
    tools: Any = [{"type": "function", "strict": False, **t} for t in TOOLS]
    items: list[Any] = [{"role": "user", "content": "refund order 7"}]
    called = []
    with _client(tool_gateway) as client:
        for _ in range(3):
            if stream:
                with client.responses.stream(model="openai/gpt-4o-mini", input=items, tools=tools) as s:
                    kinds = [event.type for event in s]
                    response = s.get_final_response()
            else:
                response = client.responses.create(model="openai/gpt-4o-mini", input=items, tools=tools)
            calls = [o for o in response.output if o.type == "function_call"]
            if not calls:
                assert "refund order 7" in response.output_text
                break
            if stream:
                assert "response.function_call_arguments.done" in kinds
            (call,) = calls
            called.append(call.name)
            items.append(call.model_dump(exclude_none=True))
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": "ok"})
        else:
            pytest.fail("no text answer after every tool was called")
    assert called == ["lookup_order", "refund"]
    assert all(r.json["input"] for r in tool_gateway.requests)


def test_without_tool_calls_the_emulator_answers_text(gateway: GatewayEmulator) -> None:
    tools: Any = [{"type": "function", "function": t} for t in TOOLS]
    with _client(gateway) as client:
        completion = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], tools=tools
        )
    assert completion.choices[0].message.tool_calls is None
