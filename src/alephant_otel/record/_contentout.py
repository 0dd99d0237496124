"""Response bodies as GenAI-convention output messages, streams assembled from their chunks.

One output message per choice (OpenAI chat and legacy completions), one for
a Response or an Anthropic message, each with its ``finish_reason``. A stream
is folded event by event: text deltas joined, tool-call arguments joined per
call (OpenAI ``tool_calls[].function.arguments``, Anthropic
``input_json_delta``), the Responses API's final ``response.completed`` object
used whole when the stream has it. Only called when content capture is on,
at export time; the body is the one the watcher kept (a body over 1 MiB lost
its middle, which the first output message says with the truncation marker).
"""

from __future__ import annotations

import json
from typing import Any, Final

from alephant_otel.record._contentcap import MARKER
from alephant_otel.record._contentin import Message, Part, _d, json_value, text_part, url_part

__all__ = ["output_messages"]

#: Provider stop reasons in the conventions' words (others are kept as they are).
_FINISH: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_call",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "max_tokens": "length",
    "completed": "stop",
}
_CUT_NOTE: Final = MARKER.format(n="?").replace("?", "an unknown number of") + " (the middle of a body over 1 MiB)"


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


def _finish(reason: Any) -> str:
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else "stop"


def _chat_choice(choice: dict[str, Any]) -> Message:
    msg = _d(choice.get("message"))
    parts: list[Part] = []
    if msg.get("content") is not None:
        parts.append(text_part(msg.get("content")))
    if msg.get("refusal"):
        parts.append(text_part(msg.get("refusal")))
    audio = msg.get("audio")
    if isinstance(audio, dict) and audio.get("transcript"):
        parts.append(text_part(audio["transcript"]))
    for call in msg.get("tool_calls") or ():
        if isinstance(call, dict):
            fn = _d(call.get("function"))
            args = json_value(fn.get("arguments"))
            parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"), "arguments": args})
    if "text" in choice and not msg:  # legacy completions
        parts.append(text_part(choice.get("text")))
    return {
        "role": str(msg.get("role") or "assistant"),
        "parts": parts,
        "finish_reason": _finish(choice.get("finish_reason")),
    }


def _response_output(resp: dict[str, Any]) -> list[Message]:
    parts: list[Part] = []
    for item in resp.get("output") or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for c in item.get("content") or ():
                if isinstance(c, dict) and c.get("type") in ("output_text", "text"):
                    parts.append(text_part(c.get("text", "")))
                elif isinstance(c, dict) and c.get("type") == "refusal":
                    parts.append(text_part(c.get("refusal", "")))
        elif kind == "function_call":
            args = json_value(item.get("arguments"))
            parts.append({"type": "tool_call", "id": item.get("call_id"), "name": item.get("name"), "arguments": args})
        elif kind == "reasoning":
            summary = " ".join(
                s.get("text", "") for s in item.get("summary") or () if isinstance(s, dict) and s.get("text")
            )
            if summary:
                parts.append({"type": "reasoning", "content": summary})
        elif kind == "image_generation_call":
            parts.append(url_part("data:image/png;base64," + str(item.get("result") or "")))
        elif kind is not None:
            parts.append({"type": str(kind)})
    details = resp.get("incomplete_details")
    if isinstance(details, dict) and details.get("reason"):
        reason = str(details["reason"])
    elif any(p.get("type") == "tool_call" for p in parts):
        reason = "tool_call"
    else:
        reason = _finish(resp.get("status"))
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]


def _anthropic_message(msg: dict[str, Any]) -> list[Message]:
    parts: list[Part] = []
    for block in msg.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(text_part(block.get("text", "")))
        elif kind in ("tool_use", "server_tool_use"):
            parts.append(
                {"type": "tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")}
            )
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": str(block.get("thinking") or "")})
        elif kind is not None:
            parts.append({"type": str(kind)})
    return [{"role": "assistant", "parts": parts, "finish_reason": _finish(msg.get("stop_reason"))}]


def _from_object(obj: Any) -> list[Message]:
    if not isinstance(obj, dict):
        return []
    if isinstance(obj.get("choices"), list):
        return [_chat_choice(c) for c in obj["choices"] if isinstance(c, dict)]
    if obj.get("object") == "response" or "output" in obj:
        return _response_output(obj)
    if obj.get("type") == "message" and isinstance(obj.get("content"), list):
        return _anthropic_message(obj)
    return []


class _Stream:
    """Chunks folded into output messages: choices (OpenAI) or content blocks (Anthropic)."""

    def __init__(self) -> None:
        #: choice index -> (texts, tool calls by index, finish reason, role)
        self.choices: dict[int, tuple[list[str], dict[int, dict[str, Any]], list[str], list[str]]] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.stop: str | None = None
        self.completed: list[Message] | None = None
        self.response_text: list[str] = []

    def event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if isinstance(obj.get("choices"), list):
            for choice in obj["choices"]:
                if isinstance(choice, dict):
                    self._choice(choice)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            if isinstance(obj.get("response"), dict):
                self.completed = _response_output(obj["response"])
        elif kind == "response.output_text.delta":
            self.response_text.append(str(obj.get("delta") or ""))
        elif kind == "content_block_start" and isinstance(obj.get("content_block"), dict):
            block = dict(obj["content_block"])
            block["_json"] = []
            self.blocks[_int(obj.get("index"), 0)] = block
        elif kind == "content_block_delta" and isinstance(obj.get("delta"), dict):
            block = self.blocks.setdefault(_int(obj.get("index"), 0), {"type": "text", "text": "", "_json": []})
            delta = obj["delta"]
            if delta.get("type") == "text_delta":
                block["text"] = str(block.get("text") or "") + str(delta.get("text") or "")
            elif delta.get("type") == "input_json_delta":
                block["_json"].append(str(delta.get("partial_json") or ""))
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = str(block.get("thinking") or "") + str(delta.get("thinking") or "")
        elif kind == "message_delta" and isinstance(obj.get("delta"), dict):
            self.stop = obj["delta"].get("stop_reason") or self.stop

    def _choice(self, choice: dict[str, Any]) -> None:
        index = _int(choice.get("index"), 0)
        texts, calls, finish, role = self.choices.setdefault(index, ([], {}, [], []))
        if choice.get("finish_reason"):
            finish.append(str(choice["finish_reason"]))
        if isinstance(choice.get("text"), str):  # legacy completions
            texts.append(choice["text"])
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("role"), str) and not role:
            role.append(delta["role"])
        for key in ("content", "refusal"):
            if isinstance(delta.get(key), str):
                texts.append(delta[key])
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            slot = calls.setdefault(_int(call.get("index"), len(calls)), {"args": []})
            fn = _d(call.get("function"))
            if call.get("id"):
                slot["id"] = call["id"]
            if fn.get("name"):
                slot["name"] = fn["name"]
            if isinstance(fn.get("arguments"), str):
                slot["args"].append(fn["arguments"])

    def messages(self) -> list[Message]:
        if self.completed is not None:
            return self.completed
        if self.response_text:
            return [{"role": "assistant", "parts": [text_part("".join(self.response_text))], "finish_reason": "stop"}]
        if self.blocks:
            parts: list[Part] = []
            for _, block in sorted(self.blocks.items()):
                if block.get("type") == "tool_use":
                    raw = "".join(block["_json"])
                    args = json_value(raw) if raw else block.get("input")
                    parts.append(
                        {"type": "tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": args}
                    )
                elif block.get("type") == "thinking":
                    parts.append({"type": "reasoning", "content": str(block.get("thinking") or "")})
                else:
                    parts.append(text_part(str(block.get("text") or "")))
            return [{"role": "assistant", "parts": parts, "finish_reason": _finish(self.stop)}]
        out: list[Message] = []
        for _, (texts, calls, finish, role) in sorted(self.choices.items()):
            parts = [text_part("".join(texts))] if texts else []
            for _, call in sorted(calls.items()):
                args = json_value("".join(call["args"]))
                parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"), "arguments": args})
            out.append(
                {
                    "role": role[0] if role else "assistant",
                    "parts": parts,
                    "finish_reason": _finish(finish[-1] if finish else None),
                }
            )
        return out


def _sse(body: bytes) -> list[Message]:
    stream = _Stream()
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        data = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
        payload = "\n".join(data)
        if not payload or payload == "[DONE]":
            continue
        try:
            obj = json.loads(payload)
        except ValueError:
            continue  # an event cut by the watcher's head/tail gap
        if isinstance(obj, dict):
            stream.event(obj)
    return stream.messages()


def output_messages(body: bytes, is_stream: bool, whole: bool) -> list[Message]:
    """The output messages of a (decoded) response body; [] when it has none or is not readable."""
    if is_stream:
        out = _sse(body)
    else:
        try:
            out = _from_object(json.loads(body)) if whole else []
        except ValueError:
            out = []
    if not whole and out:
        out[0]["parts"].append(text_part(_CUT_NOTE))
    return out
