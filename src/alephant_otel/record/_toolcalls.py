"""The tool calls a model response asked for: their names and call ids, for the request span.

``tool(name, call_id=...)`` spans can then be matched to the request that
asked for them. Read only when the response says it asked for tools (a
``tool_calls``/``tool_use`` finish reason, or a Responses API body holding a
``function_call`` item): every other response pays one set lookup per finish
reason, and the body is parsed a second time only for those that did ask.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any, Final

from alephant_otel.record._decode import decode_body

__all__ = ["asked_for_tools", "requested_calls"]

#: Finish reasons that mean "the model asks for tool calls": OpenAI chat, Anthropic, legacy functions.
TOOL_REASONS: Final = frozenset(("tool_calls", "tool_use", "function_call"))
_MAX_CALLS: Final = 128
_MAX_TEXT: Final = 256


def asked_for_tools(finish_reasons: Iterable[str], path: str, body: bytes) -> bool:
    """Whether a response may hold tool calls (cheap: the finish reasons, or a Responses body)."""
    for reason in finish_reasons:
        if reason in TOOL_REASONS:
            return True
    # The Responses API ends a function-calling response with "completed" like any other.
    return "/responses" in path and b"function_call" in body


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) and value else None


class _Calls:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.ids: list[str] = []
        self._seen: set[str] = set()

    def add(self, name: Any, call_id: Any) -> None:
        name, call_id = _text(name), _text(call_id)
        if name is None or len(self.names) >= _MAX_CALLS:
            return
        if call_id is not None:
            if call_id in self._seen:  # a stream announces an item and completes it
                return
            self._seen.add(call_id)
        self.names.append(name)
        self.ids.append(call_id or "")

    def obj(self, obj: Any) -> None:
        """One JSON body or one stream event, in any of the three APIs' shapes."""
        if not isinstance(obj, dict):
            return
        for choice in obj.get("choices") or ():
            if isinstance(choice, dict):
                for part in ("message", "delta"):
                    message = choice.get(part)
                    if isinstance(message, dict):
                        for call in message.get("tool_calls") or ():
                            if isinstance(call, dict):
                                function = call.get("function")
                                self.add(function.get("name") if isinstance(function, dict) else None, call.get("id"))
        self._items(obj.get("content"), "tool_use", "id")  # Anthropic message
        block = obj.get("content_block")  # Anthropic stream: content_block_start
        self._items([block] if block is not None else None, "tool_use", "id")
        self._items(obj.get("output"), "function_call", "call_id")  # Responses
        item = obj.get("item")  # Responses stream: response.output_item.added/done
        self._items([item] if item is not None else None, "function_call", "call_id")
        response = obj.get("response")  # Responses stream: response.completed
        if isinstance(response, dict):
            self._items(response.get("output"), "function_call", "call_id")

    def _items(self, items: Any, kind: str, id_key: str) -> None:
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("type") == kind:
                    self.add(item.get("name"), item.get(id_key))


def requested_calls(
    body: bytes, content_type: str | None, content_encoding: str | None, whole: bool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names, call ids) of the tool calls a response body asks for, in order; ids "" where none."""
    data: bytes | None = body
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        data, whole = decode_body(body, content_encoding, whole)
    calls = _Calls()
    if data:
        if (content_type or "").startswith("text/event-stream") or data.lstrip()[:6] in (b"data:", b"event:"):
            for line in data.splitlines():
                if line.startswith(b"data:") and (b"tool" in line or b"function_call" in line):
                    try:
                        calls.obj(json.loads(line[5:]))
                    except ValueError:
                        continue  # a line cut by the watcher's head/tail split
        else:
            with contextlib.suppress(ValueError):  # a JSON body cut by the watcher
                calls.obj(json.loads(data))
    return tuple(calls.names), tuple(calls.ids)
