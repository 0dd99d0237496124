"""(4) Async agents in parallel: each task its own run, one shared client, no mixing.

    python examples/async_agents.py
"""

from __future__ import annotations

import asyncio

import openai
from _gateway import gateway

import alephant_otel
from alephant_otel import current, run, session


@run()
async def research(client: openai.AsyncOpenAI, topic: str) -> str:
    # Each call of a decorated coroutine is a new run with its own id.
    resp = await client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": f"Research {topic}"}])
    return f"{current().run_id}: {resp.choices[0].message.content}"


async def main() -> None:
    with gateway() as gw:
        alephant_otel.configure(gateway_url=gw.url)
        async with openai.AsyncOpenAI(base_url=gw.openai_base_url, api_key=gw.api_key) as client:
            with session(name="Market research", path="/research"), run(agent_id="planner"):
                with run(agent_id="researcher"):
                    results = await asyncio.gather(*(research(client, t) for t in ("pricing", "churn", "support")))
        for line in results:
            print(line)
        gw.print_received()


asyncio.run(main())
