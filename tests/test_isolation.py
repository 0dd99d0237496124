"""Concurrent sessions never mix: asyncio tasks and threads through shared clients.

Every task and every thread opens its own session and run (unique ids, a
nested sub-run inside), waits until all of them are open at once, then sends
gateway requests through clients shared by everyone: one ``httpx``, one
``httpx2`` and two ``openai`` clients (one on ``DefaultAioHttpClient``) for
all tasks, one of each but the aiohttp one for all threads. Some work is carried into a ``ThreadPoolExecutor`` with
``bind_context`` and some through ``context_carrier``/``attach_carrier``.
Each request names its sender (an ``x-test-sender`` header and the same
marker in the body), so every request the emulator recorded, and every
request span, can be checked against the ids of the task that sent it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alephant_otel import attach_carrier, bind_context, context_carrier, current, run, session
from alephant_otel.testing import GatewayEmulator

EMBED = "openai/text-embedding-3-small"
CHAT = "openai/gpt-4o-mini"
POOL_LIMIT = 100  # connections per shared client; the emulator serves one thread per connection
SENDER = "x-test-sender"


@dataclass(frozen=True)
class Sender:
    """The ids a request must carry: those of the scope that sent it."""

    session_id: str
    name: str
    path: str
    agent_id: str
    run_id: str
    parent_run_id: str | None


class Ledger:
    """Who sent which request (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.expected: dict[str, Sender] = {}

    def note(self, marker: str) -> str:
        """Record the current scope as the sender of ``marker``, checking what ``current()`` says."""
        cur = current()
        sender = Sender(cur.session_id, cur.session_name, cur.session_path, cur.agent_id, cur.run_id,  # type: ignore[arg-type]
                        cur.parent_run_id)
        assert None not in (sender.session_id, sender.name, sender.path, sender.agent_id, sender.run_id), sender
        with self._lock:
            assert marker not in self.expected
            self.expected[marker] = sender
        return marker


@dataclass
class AsyncClients:
    url: str
    httpx: httpx.AsyncClient
    httpx2: httpx2.AsyncClient
    openai: openai.AsyncOpenAI
    openai_aiohttp: openai.AsyncOpenAI  # DefaultAioHttpClient: aiohttp sockets under httpx2


#: send_async's kinds of request; send_sync has the first four.
ASYNC_KINDS = 5


@dataclass
class SyncClients:
    url: str
    httpx: httpx.Client
    httpx2: httpx2.Client
    openai: openai.OpenAI


async def send_async(clients: AsyncClients, ledger: Ledger, marker: str, kind: int) -> None:
    ledger.note(marker)
    headers = {SENDER: marker}
    if kind == 0:
        r = await clients.httpx.post(clients.url + "/v1/embeddings", json={"model": EMBED, "input": marker},
                                     headers=headers)
        r.raise_for_status()
    elif kind == 1:
        r2 = await clients.httpx2.post(clients.url + "/v1/embeddings", json={"model": EMBED, "input": marker},
                                       headers=headers)
        r2.raise_for_status()
    elif kind == 2:
        await clients.openai.embeddings.create(model=EMBED, input=marker, extra_headers=headers)
    elif kind == 4:
        await clients.openai_aiohttp.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": marker}], extra_headers=headers)
    else:
        stream = await clients.openai.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": marker}], stream=True,
            stream_options={"include_usage": True}, extra_headers=headers)
        async for _ in stream:
            await asyncio.sleep(0)


def send_sync(clients: SyncClients, ledger: Ledger, marker: str, kind: int) -> None:
    ledger.note(marker)
    headers = {SENDER: marker}
    if kind == 0:
        clients.httpx.post(clients.url + "/v1/embeddings", json={"model": EMBED, "input": marker},
                           headers=headers).raise_for_status()
    elif kind == 1:
        clients.httpx2.post(clients.url + "/v1/embeddings", json={"model": EMBED, "input": marker},
                            headers=headers).raise_for_status()
    elif kind == 2:
        clients.openai.embeddings.create(model=EMBED, input=marker, extra_headers=headers)
    else:
        stream = clients.openai.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": marker}], stream=True, extra_headers=headers)
        for _ in stream:
            pass


def send_from_carrier(clients: SyncClients, ledger: Ledger, carrier: dict[str, str], marker: str) -> None:
    """A queue worker: no context but the W3C carrier of the message."""
    assert current().session_id is None  # a pool thread has no context of its own
    with attach_carrier(carrier):
        send_sync(clients, ledger, marker, 0)


def body_marker(req: Any) -> str | None:
    body = req.json or {}
    if "input" in body:
        return str(body["input"])
    messages = body.get("messages") or [{}]
    return messages[-1].get("content")


@pytest.mark.parametrize(
    ("tasks", "threads"),
    [(200, 16), pytest.param(1000, 64, marks=pytest.mark.slow)],
    ids=["200-tasks-16-threads", "1000-tasks-64-threads"],
)
async def test_concurrent_sessions_through_shared_clients_never_mix(
    tasks: int, threads: int, gateway: GatewayEmulator, spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.perf_counter()
    ledger = Ledger()
    url = gateway.url
    limits, limits2 = httpx.Limits(max_connections=POOL_LIMIT), httpx2.Limits(max_connections=POOL_LIMIT)
    sync = SyncClients(
        url, httpx.Client(limits=limits, timeout=60), httpx2.Client(limits=limits2, timeout=60),
        openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0,
                      http_client=openai.DefaultHttpxClient(limits=limits2, timeout=60)),
    )
    aclients = AsyncClients(
        url, httpx.AsyncClient(limits=limits, timeout=60), httpx2.AsyncClient(limits=limits2, timeout=60),
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0,
                           http_client=openai.DefaultAsyncHttpxClient(limits=limits2, timeout=60)),
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0,
                           http_client=openai.DefaultAioHttpClient(limits=limits2, timeout=60)),
    )
    pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="carried")
    all_open = asyncio.Event()
    opened = 0
    thread_errors: list[BaseException] = []

    async def task(i: int) -> None:
        nonlocal opened
        with session(f"sess_a{i}", name=f"Task {i}", path=f"/iso/a{i}"), run(f"run_a{i}", agent_id=f"agent_a{i}"):
            opened += 1
            if opened == tasks:
                all_open.set()
            await all_open.wait()  # every task's session is open at once from here on
            await send_async(aclients, ledger, f"a{i}/outer", i % ASYNC_KINDS)
            with run(f"run_a{i}_sub"):  # inherits the agent, knows its parent run
                await asyncio.sleep(0)
                await send_async(aclients, ledger, f"a{i}/inner", (i + 1) % ASYNC_KINDS)
                if i % 4 == 0:
                    bound = bind_context(send_sync)
                    await asyncio.wrap_future(pool.submit(bound, sync, ledger, f"a{i}/bound", i // 4 % 4))
                elif i % 4 == 2:
                    carrier = context_carrier()
                    await asyncio.wrap_future(pool.submit(send_from_carrier, sync, ledger, carrier, f"a{i}/carrier"))
            await asyncio.sleep(0)
            await send_async(aclients, ledger, f"a{i}/after", (i + 2) % ASYNC_KINDS)

    barrier = threading.Barrier(threads)

    def thread_main(j: int) -> None:
        try:
            with session(f"sess_t{j}", name=f"Thread {j}", path=f"/iso/t{j}"), run(f"run_t{j}", agent_id=f"agent_t{j}"):
                barrier.wait(timeout=60)
                send_sync(sync, ledger, f"t{j}/outer", j % 4)
                with run(f"run_t{j}_sub", agent_id=f"sub_t{j}"):
                    send_sync(sync, ledger, f"t{j}/inner", (j + 1) % 4)
                    if j % 2:
                        pool.submit(bind_context(send_sync), sync, ledger, f"t{j}/bound", (j + 2) % 4).result()
                send_sync(sync, ledger, f"t{j}/after", (j + 3) % 4)
        except BaseException as exc:
            thread_errors.append(exc)
            raise

    workers = [threading.Thread(target=thread_main, args=(j,), name=f"iso-{j}") for j in range(threads)]
    try:
        for w in workers:
            w.start()
        async with aclients.httpx, aclients.httpx2, aclients.openai, aclients.openai_aiohttp:
            await asyncio.gather(*(task(i) for i in range(tasks)))
        await asyncio.to_thread(lambda: [w.join(timeout=120) for w in workers])
    finally:
        pool.shutdown(wait=True)
        sync.httpx.close()
        sync.httpx2.close()
        sync.openai.close()
    assert not thread_errors, thread_errors
    elapsed = time.perf_counter() - started

    # --- every recorded request against the task that sent it --------------------------------------
    expected = ledger.expected
    requests = gateway.requests
    mismatches: list[str] = []
    markers = Counter(r.headers.get(SENDER) for r in requests)
    assert markers == Counter(expected.keys()), "requests lost, duplicated or unlabelled"
    headers_of = {
        "alephant-session-id": "session_id", "alephant-session-name": "name", "alephant-session-path": "path",
        "Alephant-Agent-Id": "agent_id", "Alephant-Run-Id": "run_id",
    }
    by_request_id = {}
    for req in requests:
        marker = req.headers[SENDER]
        if body_marker(req) != marker:
            mismatches.append(f"{marker}: body says {body_marker(req)!r}")
        want = expected[marker]
        for header, attr in headers_of.items():
            if req.headers.get(header) != getattr(want, attr):
                mismatches.append(f"{marker}: {header}={req.headers.get(header)!r}, sender has {getattr(want, attr)!r}")
        by_request_id[req.headers["x-request-id"]] = marker

    # --- and every request span ----------------------------------------------------------------------
    finished = spans.get_finished_spans()
    kind = {s.context.span_id: s.attributes.get("alephant.span.kind") for s in finished}
    run_spans = {s.attributes["alephant.run.id"]: s for s in finished if kind[s.context.span_id] == "run"}
    session_spans = {s.attributes["alephant.session.id"]: s for s in finished if kind[s.context.span_id] == "session"}
    request_spans = [s for s in finished if kind[s.context.span_id] == "request"]
    assert len(request_spans) == len(requests)
    span_attrs = {
        "alephant.session.id": "session_id", "alephant.session.name": "name", "alephant.session.path": "path",
        "alephant.agent.id": "agent_id", "alephant.run.id": "run_id", "alephant.run.parent_id": "parent_run_id",
        "gen_ai.conversation.id": "session_id",
    }
    for span in request_spans:
        marker = by_request_id.get(span.attributes.get("alephant.request.id"))
        if marker is None:
            mismatches.append(f"span {span.name}: request id {span.attributes.get('alephant.request.id')} not sent")
            continue
        want = expected[marker]
        for attr, field in span_attrs.items():
            got, own = span.attributes.get(attr), getattr(want, field)
            if got != own:
                mismatches.append(f"{marker}: span {attr}={got!r}, sender has {own!r}")
        parent = run_spans[want.run_id]
        if span.parent is None or span.parent.span_id != parent.context.span_id or \
                span.context.trace_id != parent.context.trace_id:
            mismatches.append(f"{marker}: request span is not a child of its run's span")

    # Roll-ups: each session and run counted its own requests, no one else's. A serialised carrier
    # (a queue message) carries ids and trace, not the in-process roll-up counters: not counted.
    counted = [s for marker, s in expected.items() if not marker.endswith("/carrier")]
    per_session = Counter(s.session_id for s in counted)
    per_run = Counter(s.run_id for s in counted) + Counter(s.parent_run_id for s in counted if s.parent_run_id)
    for sid, count in per_session.items():
        got = session_spans[sid].attributes["alephant.total.requests"]
        if got != count:
            mismatches.append(f"session {sid}: total.requests {got}, sent {count}")
    for rid, count in per_run.items():
        got = run_spans[rid].attributes["alephant.total.requests"]
        if got != count:
            mismatches.append(f"run {rid}: total.requests {got}, sent {count}")

    ours = [r for r in caplog.records if r.name.startswith("alephant_otel") and r.levelno >= 30]
    with capsys.disabled():
        print(f"\nisolation: {tasks} tasks + {threads} threads, {len(requests)} requests, "
              f"{len(request_spans)} request spans, {len(mismatches)} mismatches, {len(ours)} warnings, "
              f"{elapsed:.1f} s")
    assert not mismatches, mismatches[:20]
    assert not ours, [r.getMessage() for r in ours]
    assert len(session_spans) == tasks + threads
