"""An app that knows nothing of alephant_otel: it only sets OTel baggage.

Run it under ``opentelemetry-instrument`` (see zero_code.py, which does that
against a local emulator):

    ALEPHANT_GATEWAY_URL=http://127.0.0.1:PORT opentelemetry-instrument python examples/zero_code_app.py
"""

from __future__ import annotations

import os

import openai
from opentelemetry import baggage, context, trace

gateway = os.environ["ALEPHANT_GATEWAY_URL"].split(",")[0].rstrip("/")
client = openai.OpenAI(base_url=gateway + "/v1", api_key=os.environ.get("ALEPHANT_VIRTUAL_KEY", "sk-local"),
                       max_retries=0)

ctx = baggage.set_baggage("alephant.session.id", "zero-code-session")
ctx = baggage.set_baggage("alephant.agent.id", "zero-code-agent", ctx)
ctx = baggage.set_baggage("alephant.run.id", "zero-code-run", ctx)
token = context.attach(ctx)
try:
    with trace.get_tracer("zero_code_app").start_as_current_span("handle ticket"):
        answer = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hello from a zero-code app"}])
finally:
    context.detach(token)
print("reply:", answer.choices[0].message.content)
