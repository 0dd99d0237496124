"""``sessions show --messages``: each request's captured conversation, in the terminal.

Requests in start order, each under a one-line header (name, request id),
then one line per message part: the role, and the text as the span carried it
(capped when it was exported, and scrubbed again here). A session whose requests
carry no content says how to switch capture on.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from alephant_otel import _names as n
from alephant_otel.analytics._conversation import conversation, has_conversation
from alephant_otel.analytics._model import Session
from alephant_otel.redact._scrub import scrub_text

__all__ = ["print_messages"]

_ROLE_STYLE = {"system": "magenta", "user": "green", "assistant": "cyan", "tool": "yellow"}


def print_messages(out: Console, session: Session) -> None:
    """Print the conversation of every request of ``session`` that carries one."""
    shown = 0
    for request in sorted(session.requests, key=lambda r: r.start_ns):
        if not has_conversation(request):
            continue
        shown += 1
        head = f"[bold]{escape(request.name or 'request')}[/]"
        if request.request_id:
            head += f"  [dim]{escape(request.request_id)}[/]"
        out.print()
        out.print(head)
        for turn in conversation(request):
            style = _ROLE_STYLE.get(turn.role, "white")
            label = turn.role if turn.kind in ("text", "raw", "empty") else f"{turn.role} {turn.kind}"
            # Scrubbed again: spans from other producers never went through our scrubber.
            line = f"  [bold {style}]{escape(label)}:[/] {escape(scrub_text(turn.text))}"
            if turn.finish_reason:
                line += f"  [dim]({escape(turn.finish_reason)})[/]"
            out.print(line, soft_wrap=True)
    if not shown:
        out.print(
            f"[dim]note: no request of this session carries messages; content capture is off by default "
            f"({n.ENV_CAPTURE_CONTENT}=true or configure(capture_content=True) turns it on)[/]"
        )
