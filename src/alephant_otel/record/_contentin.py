"""Request bodies as GenAI-convention messages: system instructions and input messages.

The shapes are the OpenTelemetry GenAI conventions' JSON schemas: a message is
``{"role": ..., "parts": [...]}``; parts are ``text`` (``content``),
``tool_call`` (``id``, ``name``, ``arguments``), ``tool_call_response``
(``id``, ``response``), ``uri`` (``modality``, ``mime_type``, ``uri``),
``file`` (``file_id``) and ``blob``. A blob (an inline image, audio clip or
file, base64 or a ``data:`` URL) is recorded by type and size only:
``{"type": "blob", "modality": "image", "mime_type": "image/png", "size": 1234}``
with no ``content``: the bytes are never copied into telemetry.

Formats: OpenAI chat completions, the Responses API, legacy completions,
embeddings (their inputs, as one user message) and Anthropic messages. Input
that does not look like any of them yields no messages. Only called when
content capture is on, at export time.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["Message", "Part", "_d", "blob_part", "input_messages", "json_value", "text_part", "url_part"]

Part = dict[str, Any]
Message = dict[str, Any]

_ROLES: Final = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_MODALITY: Final = (("image", "image"), ("audio", "audio"), ("video", "video"))


def _d(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: bodies come from outside."""
    return value if isinstance(value, dict) else {}


def text_part(text: Any) -> Part:
    """A text part (anything not a string is written as its JSON)."""
    return {"type": "text", "content": text if isinstance(text, str) else json.dumps(text, default=str)}


def json_value(raw: Any) -> Any:
    """Tool call arguments as the conventions want them: the parsed object when the string is JSON."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _modality(mime: str | None, default: str = "image") -> str:
    for prefix, modality in _MODALITY:
        if mime and mime.startswith(prefix):
            return modality
    return default if mime is None else "file"


def _b64_size(data: str) -> int:
    """The decoded size of base64 text, without decoding it."""
    data = data.strip()
    return max(0, len(data) * 3 // 4 - data[-2:].count("="))


def blob_part(data: Any, mime: str | None, modality: str | None = None) -> Part:
    """A binary part by type and size only: base64 ``data`` is measured, never kept."""
    size = _b64_size(data) if isinstance(data, str) else 0
    part: Part = {"type": "blob", "modality": modality or _modality(mime), "size": size}
    if mime:
        part["mime_type"] = mime
    return part


def url_part(url: Any, modality: str = "image") -> Part:
    """A ``data:`` URL as a blob (type and size), any other URL as a ``uri`` part."""
    if not isinstance(url, str):
        return {"type": "uri", "modality": modality, "uri": ""}
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = head[5:].split(";", 1)[0] or None
        return blob_part(data, mime, _modality(mime, modality))
    return {"type": "uri", "modality": modality, "uri": url}


def _openai_part(item: Any) -> Part | None:
    """One content part of an OpenAI chat or Responses message."""
    if isinstance(item, str):
        return text_part(item)
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind in ("text", "input_text", "output_text"):
        return text_part(item.get("text", ""))
    if kind == "refusal":
        return text_part(item.get("refusal", ""))
    if kind == "image_url":
        image = item.get("image_url")
        return url_part(image.get("url") if isinstance(image, dict) else image)
    if kind == "input_image":
        if item.get("image_url"):
            return url_part(item.get("image_url"))
        return {"type": "file", "modality": "image", "file_id": str(item.get("file_id") or "")}
    if kind == "input_audio":
        audio = item.get("input_audio")
        audio = audio if isinstance(audio, dict) else item
        fmt = audio.get("format")
        return blob_part(audio.get("data"), f"audio/{fmt}" if isinstance(fmt, str) else None, "audio")
    if kind in ("file", "input_file"):
        file = _d(item.get("file")) or item
        data = file.get("file_data")
        if isinstance(data, str):
            part = url_part(data, "file") if data.startswith("data:") else blob_part(data, None, "file")
            part["modality"] = part.get("modality", "file")
            return part
        if file.get("file_url"):
            return {"type": "uri", "modality": "file", "uri": str(file.get("file_url"))}
        return {"type": "file", "modality": "file", "file_id": str(file.get("file_id") or "")}
    return {"type": str(kind or "unknown")}


def _parts(content: Any, part: Any = _openai_part) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, list):
        return [p for p in (part(item) for item in content) if p is not None]
    return [text_part(content)]


def _chat(body: dict[str, Any]) -> list[Message]:
    out: list[Message] = []
    for msg in body.get("messages") or ():
        if not isinstance(msg, dict):
            continue
        role = _ROLES.get(str(msg.get("role")), str(msg.get("role")))
        if role == "tool":
            parts: list[Part] = [
                {"type": "tool_call_response", "id": msg.get("tool_call_id"), "response": msg.get("content")}
            ]
        else:
            parts = _parts(msg.get("content"))
            for call in msg.get("tool_calls") or ():
                if isinstance(call, dict):
                    fn = _d(call.get("function"))
                    parts.append(
                        {
                            "type": "tool_call",
                            "id": call.get("id"),
                            "name": fn.get("name"),
                            "arguments": json_value(fn.get("arguments")),
                        }
                    )
        message: Message = {"role": role, "parts": parts}
        if isinstance(msg.get("name"), str):
            message["name"] = msg["name"]
        out.append(message)
    return out


def _responses(body: dict[str, Any]) -> list[Message]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "parts": [text_part(items)]}]
    out: list[Message] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            call = {"type": "tool_call", "id": item.get("call_id"), "name": item.get("name")}
            call["arguments"] = json_value(item.get("arguments"))
            out.append({"role": "assistant", "parts": [call]})
        elif kind == "function_call_output":
            resp = {"type": "tool_call_response", "id": item.get("call_id"), "response": item.get("output")}
            out.append({"role": "tool", "parts": [resp]})
        elif "role" in item:
            role = _ROLES.get(str(item.get("role")), str(item.get("role")))
            out.append({"role": role, "parts": _parts(item.get("content"))})
        elif kind is not None:
            out.append({"role": "user", "parts": [{"type": str(kind)}]})
    return out


def _anthropic_part(block: Any) -> Part | None:
    if isinstance(block, str):
        return text_part(block)
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return text_part(block.get("text", ""))
    if kind in ("image", "document"):
        source = _d(block.get("source"))
        modality = "image" if kind == "image" else "file"
        if source.get("type") == "base64":
            return blob_part(source.get("data"), source.get("media_type"), modality)
        if source.get("type") == "url":
            return {"type": "uri", "modality": modality, "uri": str(source.get("url") or "")}
        if source.get("type") == "text":
            return text_part(source.get("data", ""))
        return {"type": "file", "modality": modality, "file_id": str(source.get("file_id") or "")}
    if kind == "tool_use":
        return {"type": "tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")}
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            content = [_anthropic_part(c) for c in content]
        return {"type": "tool_call_response", "id": block.get("tool_use_id"), "response": content}
    if kind in ("thinking", "redacted_thinking"):
        return {"type": "reasoning", "content": str(block.get("thinking") or "")}
    return {"type": str(kind or "unknown")}


def _anthropic(body: dict[str, Any]) -> list[Message]:
    out: list[Message] = []
    for msg in body.get("messages") or ():
        if isinstance(msg, dict):
            role = _ROLES.get(str(msg.get("role")), str(msg.get("role")))
            out.append({"role": role, "parts": _parts(msg.get("content"), _anthropic_part)})
    return out


def _plain_inputs(value: Any) -> list[Part]:
    """Embedding or legacy completion inputs: strings, or token arrays (recorded by count)."""
    if isinstance(value, str):
        return [text_part(value)]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [text_part(f"[{len(value)} tokens]")]
        return [p for v in value for p in _plain_inputs(v)]
    return []


def input_messages(body: Any, path: str) -> tuple[list[Part], list[Message]]:
    """(system instructions, input messages) of a parsed request body sent to ``path``."""
    if not isinstance(body, dict):
        return [], []
    route = path.split("?", 1)[0].rstrip("/")
    if route.endswith("/messages"):
        system = body.get("system")
        instructions = _parts(system, _anthropic_part) if system else []
        return instructions, _anthropic(body)
    if route.endswith("/responses"):
        instructions = [text_part(body["instructions"])] if isinstance(body.get("instructions"), str) else []
        return instructions, _responses(body)
    if route.endswith("/embeddings"):
        return [], [{"role": "user", "parts": _plain_inputs(body.get("input"))}]
    if route.endswith("/chat/completions"):
        return [], _chat(body)
    if route.endswith("/completions"):
        return [], [{"role": "user", "parts": _plain_inputs(body.get("prompt"))}]
    return [], []
