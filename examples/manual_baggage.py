"""(1) Manual baggage: the plain OpenTelemetry API, no alephant_otel scopes.

Code that already manages OpenTelemetry context only has to put the ids in
baggage; the hook on httpx2 (the HTTP client the ``openai`` SDK uses) turns
them into gateway headers. Needs only ``pip install alephant-otel openai``.

    python examples/manual_baggage.py
"""

from __future__ import annotations

import openai
from _gateway import gateway
from opentelemetry import baggage, context

import alephant_otel

with gateway() as gw:
    alephant_otel.configure(gateway_url=gw.url)
    ctx = baggage.set_baggage("alephant.session.id", "support-case-1042")
    ctx = baggage.set_baggage("alephant.session.name", "Refund for order 1042", ctx)
    ctx = baggage.set_baggage("alephant.session.path", "/support/refund", ctx)
    ctx = baggage.set_baggage("alephant.agent.id", "refund-agent", ctx)
    ctx = baggage.set_baggage("alephant.run.id", "run-refund-1", ctx)
    token = context.attach(ctx)
    try:
        with openai.OpenAI(base_url=gw.openai_base_url, api_key=gw.api_key) as client:
            reply = client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Where is my refund?"}])
    finally:
        context.detach(token)
    print("reply:", reply.choices[0].message.content)
    gw.print_received()
