"""(3) The OpenAI SDK through the gateway, inside session() and run().

Spans go to a local trace file that ``alephant-otel sessions`` reads back.

    python examples/openai_session.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import openai
from _gateway import gateway

import alephant_otel
from alephant_otel import run, session

trace_file = Path(os.environ.get("ALEPHANT_TRACE_FILE") or Path(tempfile.mkdtemp()) / "traces.otlp.jsonl")

with gateway() as gw:
    provider = alephant_otel.configure(gateway_url=gw.url, trace_file=trace_file)
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key=gw.api_key)
    with session(name="Refund for order 1042", path="/support/refund") as s:
        with run(agent_id="triage"):
            triage = client.chat.completions.create(
                model="openai/gpt-4o-mini",
                messages=[{"role": "user", "content": "Customer asks where the refund for order 1042 is."}])
        with run(agent_id="responder"):
            stream = client.chat.completions.create(
                model="openai/gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                messages=[{"role": "user", "content": triage.choices[0].message.content or ""}])
            reply = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    provider.force_flush()  # type: ignore[attr-defined]
    print("session:", s.session_id)
    print("reply:", reply)
    gw.print_received()
    print("trace file:", trace_file)
    print(f"next: alephant-otel sessions show {s.session_id} --source {trace_file}")
