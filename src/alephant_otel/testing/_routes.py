"""The gateway emulator's API routes: OpenAI chat, legacy completions, Responses, embeddings,
images, and Anthropic messages, in the shapes the real SDKs parse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from alephant_otel.testing import _toolcalls
from alephant_otel.testing._emustate import _KEEP_RESPONSES, Fault, _last_user_text, _texts
from alephant_otel.testing._streaming import _Sender

__all__ = []


def _reply_text(req: dict[str, Any]) -> str:
    words = _last_user_text(req).split()[:8] or ["your", "request"]
    return "Thanks for asking about " + " ".join(words) + ". Here is what I found for you."


def _choices(req: dict[str, Any]) -> list[str]:
    """The reply of each chat choice asked for (``n``, 1 to 8)."""
    reply = _reply_text(req)
    return [" ".join([reply] * (4 * i + 1)) for i in range(_asked_for(req))]


def _asked_for(req: dict[str, Any]) -> int:
    """How many choices or images the request asks for (``n``, 1 to 8)."""
    n = req.get("n")
    return min(max(n, 1), 8) if type(n) is int else 1


def _usage(req: dict[str, Any]) -> tuple[int, int]:
    text = " ".join(_texts(req.get("messages"))) + " " + " ".join(_texts(req.get("input")))
    text += " " + " ".join(_texts(req.get("system"))) + " " + " ".join(_texts(req.get("prompt")))
    inp = max(1, len(text.split()))
    return inp, sum(len(reply.split()) for reply in _choices(req))


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _interleaved(replies: list[str], word: Callable[[int, str], bytes], stop: Callable[[int], bytes]) -> list[bytes]:
    """Stream events for several choices taking turns, a word each, as OpenAI interleaves them.

    Each choice ends (``stop(i)``) right after its last word, so a short one
    finishes long before the stream does.
    """
    words = [reply.split() for reply in replies]
    events: list[bytes] = []
    for step in range(max(len(w) for w in words)):
        for i, choice in enumerate(words):
            if step < len(choice):
                events.append(word(i, choice[step] + " "))
            if step == len(choice) - 1:
                events.append(stop(i))
    return events


class _Routes(_Sender):
    """The API routes, each answering one request (``_handle`` picks the route)."""

    def _cost_headers(self, inp: int, out: int) -> dict[str, str]:
        emu = self.server.emulator
        return {emu.cost_header: repr(emu.cost_for(inp, out))} if emu.report_cost else {}

    def _tool_call(self, req: dict[str, Any], n: int) -> _toolcalls.ToolCall | None:
        if not self.server.emulator.tool_calls:
            return None
        return _toolcalls.next_tool_call(req, f"call_emu{self.server.emulator._ids}{n:06d}", _last_user_text(req))

    def _chat(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        model = str(req.get("model") or "openai/gpt-4o-mini")
        inp, out = _usage(req)
        call = self._tool_call(req, n)
        if call is not None:
            out = call.output_tokens
        replies = _choices(req)
        rid = f"chatcmpl-emu{n:06d}"
        usage = {
            "prompt_tokens": inp,
            "completion_tokens": out,
            "total_tokens": inp + out,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        extra = self._cost_headers(inp, out)
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        if call is not None:
            if not req.get("stream"):
                self._json(200, _toolcalls.chat_body(call, rid, model, int(time.time()), usage), extra)
                return
            events = _toolcalls.chat_chunks(call, rid, model, include_usage)
            last = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": []}
            self._openai_stream(events, {**last, "usage": usage} if include_usage else None, fault, extra)
            return
        if not req.get("stream"):
            self._json(
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": i,
                            "finish_reason": "stop",
                            "logprobs": None,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                        }
                        for i, text in enumerate(replies)
                    ],
                    "usage": usage,
                },
                extra,
            )
            return

        def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
            obj = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
            if include_usage:
                obj["usage"] = None
            return _sse(obj)

        events = [chunk({"role": "assistant", "content": ""}, index=i) for i in range(len(replies))]
        events += _interleaved(
            replies, lambda i, word: chunk({"content": word}, index=i), lambda i: chunk({}, "stop", index=i)
        )
        last = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": []}
        self._openai_stream(events, {**last, "usage": usage} if include_usage else None, fault, extra)

    def _completions(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        """The legacy text completions API (``client.completions.create``)."""
        model = str(req.get("model") or "openai/gpt-3.5-turbo-instruct")
        inp, out = _usage(req)
        replies = _choices(req)
        rid = f"cmpl-emu{n:06d}"
        usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}
        extra = self._cost_headers(inp, out)

        def body(choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
            return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
                    "choices": choices, **more}  # fmt: skip

        def choice(i: int, text: str, finish: str | None) -> dict[str, Any]:
            return {"index": i, "text": text, "logprobs": None, "finish_reason": finish}

        if not req.get("stream"):
            self._json(200, body([choice(i, text, "stop") for i, text in enumerate(replies)], usage=usage), extra)
            return
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        nothing: dict[str, Any] = {"usage": None} if include_usage else {}
        events = _interleaved(
            replies,
            lambda i, word: _sse(body([choice(i, word, None)], **nothing)),
            lambda i: _sse(body([choice(i, "", "stop")], **nothing)),
        )
        self._openai_stream(events, body([], usage=usage) if include_usage else None, fault, extra)

    def _openai_stream(self, events: list[bytes], usage: Any, fault: Fault | None, extra: dict[str, str]) -> None:
        """Send an OpenAI-style stream: ``events``, the usage chunk when asked for, ``[DONE]``."""
        if usage is not None:
            events.append(_sse(usage))
        events.append(b"data: [DONE]\n\n")
        self._stream(events, fault, extra)

    def _responses(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        model = str(req.get("model") or "openai/gpt-4o-mini")
        inp, out = _usage(req)
        call = self._tool_call(req, n)
        if call is not None:
            out = call.output_tokens
        reply = _reply_text(req)
        rid = f"resp_emu{self.server.emulator._ids}{n:06d}"
        msg = {
            "id": f"msg_emu{n:06d}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": reply, "annotations": []}],
        }
        usage = {
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }

        def response(status: str, output: list[Any], use: Any) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "response",
                "created_at": int(time.time()),
                "model": model,
                "status": status,
                "output": output,
                "usage": use,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "error": None,
                "incomplete_details": None,
                "instructions": None,
                "metadata": {},
                "temperature": 1.0,
                "top_p": 1.0,
            }

        extra = self._cost_headers(inp, out)
        output = [msg] if call is None else [_toolcalls.response_item(call, n)]
        body = response("completed", output, usage)
        with self.server.emulator._state.lock:
            kept = self.server.emulator._state.responses
            kept[rid] = body
            if len(kept) > _KEEP_RESPONSES:
                del kept[next(iter(kept))]
        if not req.get("stream"):
            if req.get("background"):
                # Background mode: queued now, done when next fetched; usage only then.
                self._json(200, response("queued", [], None))
            else:
                self._json(200, body, extra)
            return

        def event(kind: str, seq: int, **data: Any) -> bytes:
            payload = json.dumps({"type": kind, "sequence_number": seq, **data})
            return f"event: {kind}\ndata: {payload}\n\n".encode()

        if call is not None:
            self._stream(_toolcalls.response_events(call, n, response, usage, event), fault, extra)
            return

        # The event order of the real API: the SDK's ``responses.stream()`` helper
        # refuses a text delta for an output item it was not told about.
        part = {"type": "output_text", "text": "", "annotations": []}
        item = {**msg, "status": "in_progress", "content": []}
        at = {"item_id": msg["id"], "output_index": 0, "content_index": 0}
        kinds: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": response("in_progress", [], None)}),
            ("response.in_progress", {"response": response("in_progress", [], None)}),
            ("response.output_item.added", {"output_index": 0, "item": item}),
            ("response.content_part.added", {**at, "part": part}),
        ]
        words = reply.split()
        for i, w in enumerate(words):
            delta = w + " " if i < len(words) - 1 else w
            kinds.append(("response.output_text.delta", {**at, "delta": delta, "logprobs": []}))
        kinds += [
            ("response.output_text.done", {**at, "text": reply, "logprobs": []}),
            ("response.content_part.done", {**at, "part": {**part, "text": reply}}),
            ("response.output_item.done", {"output_index": 0, "item": msg}),
        ]
        events = [event(kind, seq, **data) for seq, (kind, data) in enumerate(kinds)]
        events.append(event("response.completed", len(events), response=response("completed", [msg], usage)))
        self._stream(events, fault, extra)

    def _embeddings(self, req: dict[str, Any], n: int) -> None:
        inputs = req.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        inp = max(1, len(" ".join(_texts(inputs)).split()))
        data = [{"object": "embedding", "index": i, "embedding": [0.01 * (i + 1)] * 8} for i in range(len(items))]
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(req.get("model") or "text-embedding-3-small"),
                "usage": {"prompt_tokens": inp, "total_tokens": inp},
            },
            self._cost_headers(inp, 0),
        )

    def _images(self, req: dict[str, Any]) -> None:
        # gpt-image-1 bills tokens: 272 output tokens a low-quality 1024x1024 image.
        images = _asked_for(req)
        inp, out = _usage(req)[0], 272 * images
        usage = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
                 "input_tokens_details": {"text_tokens": inp, "image_tokens": 0}}  # fmt: skip
        data = [{"b64_json": "iVBORw0KGgo="} for _ in range(images)]
        self._json(200, {"created": int(time.time()), "data": data, "usage": usage}, self._cost_headers(inp, out))

    def _messages(self, req: dict[str, Any], n: int, fault: Fault | None) -> None:
        model = str(req.get("model") or "anthropic/claude-3-5-haiku-latest")
        inp, out = _usage(req)
        reply = _reply_text(req)
        mid = f"msg_emu{n:06d}"
        usage = {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        extra = self._cost_headers(inp, out)
        if not req.get("stream"):
            self._json(
                200,
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": reply}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
                extra,
            )
            return

        def event(kind: str, **data: Any) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        events = [
            event(
                "message_start",
                message={
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            ),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ]
        events += [
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": w + " "}) for w in reply.split()
        ]
        events += [
            event("content_block_stop", index=0),
            event(
                "message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": out}
            ),
            event("message_stop"),
        ]
        self._stream(events, fault, extra)
