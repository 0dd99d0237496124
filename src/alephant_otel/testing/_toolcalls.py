"""Tool calls for the gateway emulator: "call each offered tool once, then answer".

With ``GatewayEmulator(tool_calls=True)``, a chat completion or a Response whose
request offers function tools is answered, turn by turn, by the conversation it
carries (no state is kept between requests, so concurrent sessions cannot mix):

- the first offered tool that no earlier turn of the conversation called is
  called, one per turn, in the order the tools are offered;
- once every offered tool has been called (or none is offered), the model
  answers with text, as without ``tool_calls``.

A tool counts as called when the history holds an assistant ``tool_calls``
entry (chat) or a ``function_call`` item (Responses) naming it. Arguments are
made from the tool's JSON schema: every required property gets a value of its
type (a string is the start of the last user message). Agent frameworks then run
their real loop against the emulator: an OpenAI Agents SDK handoff is a tool
call (``transfer_to_<agent>``), so a triage agent hands off at once, and the
specialist calls each of its tools once and answers.

The shapes are those the ``openai`` SDK parses: chat ``tool_calls`` (and their
streamed deltas, ``finish_reason: "tool_calls"``), Responses ``function_call``
output items (and the ``response.function_call_arguments.*`` events).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ToolCall", "chat_body", "chat_chunks", "next_tool_call", "response_events", "response_item"]


@dataclass(frozen=True)
class ToolCall:
    """The one tool call the emulator answers a turn with."""

    call_id: str
    name: str
    arguments: str

    @property
    def output_tokens(self) -> int:
        """Tokens reported for the call: the words of its arguments, at least 1."""
        return max(1, len(self.arguments.split()))


def _offered(req: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, JSON schema of the parameters) of each function tool offered, in order."""
    tools = req.get("tools")
    if not isinstance(tools, list):
        return
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        # Chat nests the function ({"type": "function", "function": {...}}); Responses does not.
        nested: Any = tool.get("function")
        fn: dict[str, Any] = nested if isinstance(nested, dict) else tool
        name = fn.get("name")
        if isinstance(name, str) and name:
            params = fn.get("parameters")
            yield name, params if isinstance(params, dict) else {}


def _called(req: dict[str, Any]) -> set[str]:
    """Names of the tools some earlier turn of this conversation called."""
    names: set[str] = set()
    for key in ("messages", "input"):
        history = req.get(key)
        if not isinstance(history, list):
            continue
        for item in history:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call" and isinstance(item.get("name"), str):
                names.add(item["name"])
            for call in item.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                    names.add(fn["name"])
    return names


def _value(schema: Any, text: str) -> Any:
    """A value of ``schema``'s type (the first enum value where there is one)."""
    if not isinstance(schema, dict):
        return text
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return _arguments(schema, text)
    return {"integer": 1, "number": 1.0, "boolean": True, "array": [], "null": None}.get(str(kind), text)


def _arguments(schema: dict[str, Any], text: str) -> dict[str, Any]:
    props: Any = schema.get("properties")
    required: Any = schema.get("required")
    props = props if isinstance(props, dict) else {}
    required = required if isinstance(required, list) else []
    return {key: _value(props.get(key), text) for key in required if isinstance(key, str)}


def next_tool_call(req: dict[str, Any], call_id: str, user_text: str) -> ToolCall | None:
    """The tool call that answers this turn, or None when the model should answer with text."""
    called = _called(req)
    text = " ".join(user_text.split()[:8]) or "emulated"
    for name, params in _offered(req):
        if name not in called:
            return ToolCall(call_id, name, json.dumps(_arguments(params, text)))
    return None


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat_body(call: ToolCall, rid: str, model: str, created: int, usage: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat completion that calls ``call``."""
    message = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        ],
    }
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": message}],
        "usage": usage,
    }


def chat_chunks(call: ToolCall, rid: str, model: str, include_usage: bool) -> list[bytes]:
    """The stream events of a chat completion that calls ``call`` (before any usage chunk)."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if include_usage:
            obj["usage"] = None
        return _sse(obj)

    head = {"index": 0, "id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
    events = [chunk({"role": "assistant", "content": None, "tool_calls": [head]})]
    # The arguments arrive in pieces, as the API streams them.
    args = call.arguments
    for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
        if piece:
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    events.append(chunk({}, "tool_calls"))
    return events


def response_item(call: ToolCall, n: int) -> dict[str, Any]:
    """The Responses ``function_call`` output item of ``call``."""
    return {
        "id": f"fc_emu{n:06d}",
        "type": "function_call",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }


def response_events(
    call: ToolCall,
    n: int,
    response: Callable[[str, list[Any], Any], dict[str, Any]],
    usage: dict[str, Any],
    event: Callable[..., bytes],
) -> list[bytes]:
    """The Responses stream of a turn that calls ``call`` (``response``/``event`` build the envelopes)."""
    item = response_item(call, n)
    at = {"item_id": item["id"], "output_index": 0}
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response("in_progress", [], None)}),
        ("response.in_progress", {"response": response("in_progress", [], None)}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "arguments": "", "status": "in_progress"}}),
        ("response.function_call_arguments.delta", {**at, "delta": call.arguments}),
        ("response.function_call_arguments.done", {**at, "name": call.name, "arguments": call.arguments}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": response("completed", [item], usage)}),
    ]
    return [event(kind, seq, **data) for seq, (kind, data) in enumerate(kinds)]
