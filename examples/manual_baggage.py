"""(1) Manual baggage: the plain OpenTelemetry API, no alephant_otel scopes.

Code that already manages OpenTelemetry context only has to put the ids in
baggage; the httpx hook turns them into gateway headers.

    python examples/manual_baggage.py
"""

from __future__ import annotations

import httpx
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
        with httpx.Client(base_url=gw.openai_base_url, headers={"authorization": f"Bearer {gw.api_key}"}) as client:
            reply = client.post("/chat/completions", json={
                "model": "openai/gpt-4o-mini",
                "messages": [{"role": "user", "content": "Where is my refund?"}],
            }).json()
    finally:
        context.detach(token)
    print("reply:", reply["choices"][0]["message"]["content"])
    gw.print_received()
