"""A request's captured conversation, read back for the terminal and the web view.

Request spans carry the conversation when content capture was on:
``gen_ai.system_instructions``, ``gen_ai.input.messages`` and
``gen_ai.output.messages``, JSON strings in the GenAI conventions' shapes
(written by this package or by any other instrumentation that follows them).
:func:`conversation` turns them into a flat list of :class:`Turn`: one per
message part, in order (system instructions, the input, then the output), each
with its role and a text to show. A value that is not valid JSON (cut by a
backend's attribute length limit) is shown as it is, as one turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from alephant_otel.analytics._model import Request

__all__ = ["Turn", "conversation", "has_conversation"]

_SIZE_UNITS: Final = ((1 << 20, "MB"), (1 << 10, "KB"))


@dataclass(frozen=True, slots=True)
class Turn:
    """One part of one message, ready to show.

    Attributes:
        role: ``system``, ``user``, ``assistant``, ``tool`` (or what the span said).
        kind: The part type: ``text``, ``tool_call``, ``tool_call_response``,
            ``blob``, ``uri``, ``file``, ``reasoning``, ... (``raw``: unreadable JSON).
        text: What to show: the text, a call as ``name(arguments)``, a result,
            or a binary part as its type and size.
        output: Whether the part is from the model's answer (output messages).
        finish_reason: The output message's finish reason, on its last part.
    """

    role: str
    kind: str
    text: str
    output: bool = False
    finish_reason: str | None = None


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "size unknown"
    for unit, name in _SIZE_UNITS:
        if n >= unit:
            return f"{n / unit:.1f} {name}"
    return f"{n} bytes"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _part_text(part: dict[str, Any]) -> str:
    kind = part.get("type")
    if kind in ("text", "reasoning"):
        return _text(part.get("content", ""))
    if kind == "tool_call":
        args = part.get("arguments")
        return f"{part.get('name') or 'tool'}({'' if args is None else _text(args)})" + (
            f"  [{part['id']}]" if part.get("id") else ""
        )
    if kind == "tool_call_response":
        head = f"[{part['id']}] " if part.get("id") else ""
        return head + _text(part.get("response", ""))
    if kind == "blob":
        mime = part.get("mime_type") or part.get("modality") or "binary"
        return f"[{part.get('modality') or 'blob'}: {mime}, {_size(part.get('size'))}]"
    if kind in ("uri", "file"):
        return f"[{part.get('modality') or kind}] {part.get('uri') or part.get('file_id') or ''}".rstrip()
    return f"[{kind}]"


def _messages(raw: str | None, role: str | None, output: bool) -> list[Turn]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [Turn(role or ("assistant" if output else "user"), "raw", raw, output)]
    if role is not None:  # system instructions: a list of parts
        value = [{"role": role, "parts": value}]
    turns: list[Turn] = []
    for message in value if isinstance(value, list) else ():
        if not isinstance(message, dict):
            continue
        who = str(message.get("role") or ("assistant" if output else "user"))
        parts = [p for p in message.get("parts") or () if isinstance(p, dict)]
        finish = message.get("finish_reason") if output else None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            kind = str(part.get("type") or "unknown")
            turns.append(Turn(who, kind, _part_text(part), output, str(finish) if last and finish else None))
        if not parts:
            turns.append(Turn(who, "empty", "", output, str(finish) if finish else None))
    return turns


def conversation(request: Request) -> list[Turn]:
    """The captured conversation of ``request`` (empty when capture was off)."""
    return (
        _messages(request.system_instructions, "system", False)
        + _messages(request.input_messages, None, False)
        + _messages(request.output_messages, None, True)
    )


def has_conversation(request: Request) -> bool:
    """Whether ``request``'s span carried any captured content."""
    return bool(request.input_messages or request.output_messages or request.system_instructions)
