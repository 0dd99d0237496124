"""Gateway headers on the wire, through real SDKs and clients, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import httpx2
import openai
import pytest
from opentelemetry import baggage, context

import alephant_otel
from alephant_otel import current, gateway_headers, run, session
from alephant_otel.testing import GatewayEmulator

ALEPHANT = (
    "alephant-session-id",
    "alephant-session-name",
    "alephant-session-path",
    "alephant-agent-id",
    "alephant-run-id",
    "x-request-id",
)
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


def ids(req):
    return {h: req.headers.get(h) for h in ALEPHANT}


def _openai(gw: GatewayEmulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-test", max_retries=0)


def test_openai_sync_nested_runs(gateway: GatewayEmulator) -> None:
    client = _openai(gateway)
    with client, session("sess_1", name="Refund case", path="/support/refund"):
        with run("run_outer", agent_id="triage"):
            client.chat.completions.create(**CHAT)
            with run("run_inner", agent_id="search"):
                client.chat.completions.create(**CHAT)
            with run("run_inherit"):
                client.embeddings.create(model="openai/text-embedding-3-small", input="x")
        client.chat.completions.create(**CHAT)
    outer, inner, inherit, bare = gateway.requests
    common = {"alephant-session-id": "sess_1", "alephant-session-name": "Refund case",
              "alephant-session-path": "/support/refund"}
    assert ids(outer) == {**common, "alephant-agent-id": "triage", "alephant-run-id": "run_outer",
                          "x-request-id": outer.headers["x-request-id"]}
    assert ids(inner) | {"x-request-id": None} == {**common, "alephant-agent-id": "search",
                                                   "alephant-run-id": "run_inner", "x-request-id": None}
    # A nested run without an agent id keeps its parent's agent.
    assert inherit.headers["Alephant-Agent-Id"] == "triage"
    assert inherit.headers["Alephant-Run-Id"] == "run_inherit"
    # After the runs end only the session remains.
    assert ids(bare) | {"x-request-id": None} == {**common, "alephant-agent-id": None,
                                                  "alephant-run-id": None, "x-request-id": None}
    request_ids = [r.headers["x-request-id"] for r in gateway.requests]
    assert len(set(request_ids)) == 4 and all(request_ids)


async def test_openai_async(gateway: GatewayEmulator) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0)
    async with client:
        with session("sess_a"), run("run_a", agent_id="writer"):
            await client.chat.completions.create(**CHAT)
            stream = await client.chat.completions.create(**CHAT, stream=True)
            async for _ in stream:
                pass
    assert [ids(r)["alephant-run-id"] for r in gateway.requests] == ["run_a", "run_a"]
    assert {r.headers["alephant-session-id"] for r in gateway.requests} == {"sess_a"}


def test_anthropic_sdk(gateway: GatewayEmulator) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-test", max_retries=0)
    with client, session("sess_claude"), run("run_c", agent_id="critic"):
        client.messages.create(model="anthropic/claude-3-5-haiku-latest", max_tokens=64,
                               messages=[{"role": "user", "content": "hi"}])
    (req,) = gateway.requests
    assert req.path == "/v1/messages"
    assert ids(req)["alephant-session-id"] == "sess_claude"
    assert ids(req)["alephant-run-id"] == "run_c"


@pytest.fixture(params=["fast", "public"])
def header_path(request, monkeypatch):
    """Both ways of writing headers: httpx's internal list (verified at run time) and the public API."""
    from alephant_otel.wire import _attempt

    if request.param == "public":
        monkeypatch.setattr(_attempt, "_list_layout", {httpx.Headers: False, httpx2.Headers: False})
    else:
        assert _attempt._has_list_layout(httpx.Headers) and _attempt._has_list_layout(httpx2.Headers)
    return request.param


def test_a_headers_class_with_another_layout_gets_the_public_api() -> None:
    from alephant_otel.wire import _attempt

    class Other(httpx.Headers):
        @property
        def raw(self):  # a future release that, say, caches raw items
            return [(b"cached", b"1")]

    assert not _attempt._has_list_layout(Other)
    assert not _attempt._has_list_layout(dict)


@pytest.mark.parametrize("layout", ["list fast path", "public API"])
def test_alephant_members_leave_a_baggage_header_set_before_the_hook(layout: str) -> None:
    from alephant_otel.context import _state
    from alephant_otel.wire import _attempt, _request

    other = type("Other", (httpx.Headers,), {"raw": property(lambda s: [])})  # fails the layout probe
    cls = httpx.Headers if layout == "list fast path" else other
    assert _attempt._has_list_layout(cls) is (layout == "list fast path")
    with session("sess_b"):
        state = _state.active_state()
        headers = cls({"baggage": "alephant.session.id=sess_b, tenant=acme,alephant.run.id=r;p=1"})
        _request._add_headers(headers, state)
        assert headers.get_list("baggage") == ["tenant=acme"]
        assert headers["alephant-session-id"] == "sess_b"
        only_ours = cls([("baggage", "alephant.session.id=sess_b"), ("baggage", "alephant.agent.id=a")])
        _request._add_headers(only_ours, state)
        assert "baggage" not in only_ours
        untouched = cls({"baggage": "tenant=acme,k=v"})
        _request._add_headers(untouched, state)
        assert untouched.get_list("baggage") == ["tenant=acme,k=v"]


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize(
    "given",
    [
        [("x-request-id", "req-mine"), ("x-stainless-retry-count", "2")],
        [("X-Request-ID", "a"), ("x-request-id", "b"), ("x-stainless-retry-count", "1")],
        [("x-stainless-retry-count", "1"), ("x-stainless-retry-count", "2")],
        [("x-request-id", "req-é".encode()), ("x-stainless-retry-count", "٣".encode())],
        [("x-request-id", b"req-\xe9"), ("x-stainless-retry-count", "3")],
    ],
    ids=["plain", "two ids", "two counts", "utf-8", "latin-1"],
)
def test_caller_headers_read_as_httpx_reads_them(module, given) -> None:
    """The request id and retry count the hook reads are what ``Headers.get`` returns, in every encoding."""
    from alephant_otel.context import _state
    from alephant_otel.wire import _request

    with session("sess_h"):
        headers = module.Headers(given)
        caller_id, retry = headers.get("x-request-id"), headers.get("x-stainless-retry-count")
        request_id, read_retry, ours = _request._add_headers(headers, _state.active_state())
        assert read_retry == retry
        assert ours is (caller_id is None)
        assert request_id == (caller_id if caller_id is not None else headers["x-request-id"])


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_plain_clients_sync(module, header_path, gateway: GatewayEmulator, other_server: GatewayEmulator) -> None:
    with module.Client() as client, session("sess_p", path="/p"), run("run_p", agent_id="a1"):
        client.post(gateway.url + "/v1/chat/completions", json=CHAT).raise_for_status()
        client.post(other_server.url + "/v1/chat/completions", json=CHAT).raise_for_status()
    (sent,) = gateway.requests
    assert ids(sent) | {"x-request-id": "?"} == {
        "alephant-session-id": "sess_p", "alephant-session-name": None, "alephant-session-path": "/p",
        "alephant-agent-id": "a1", "alephant-run-id": "run_p", "x-request-id": "?"}
    assert re.fullmatch(r"req_[0-9a-f]{32}", sent.headers["x-request-id"])
    (elsewhere,) = other_server.requests
    assert all(elsewhere.headers.get(h) is None for h in ALEPHANT)


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_plain_clients_async(
    module, header_path, gateway: GatewayEmulator, other_server: GatewayEmulator
) -> None:
    async with module.AsyncClient() as client:
        with session("sess_q"), run("run_q", agent_id="a2"):
            (await client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})).raise_for_status()
            other = await client.post(other_server.url + "/v1/embeddings", json={"model": "m", "input": "x"})
            other.raise_for_status()
    assert ids(gateway.requests[0])["alephant-run-id"] == "run_q"
    assert all(other_server.requests[0].headers.get(h) is None for h in ALEPHANT)


def test_no_session_means_only_a_request_id(gateway: GatewayEmulator) -> None:
    with httpx.Client() as client:
        client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
    (req,) = gateway.requests
    assert [h for h in ALEPHANT if req.headers.get(h) is not None] == ["x-request-id"]


def test_manual_baggage_equals_session(gateway: GatewayEmulator) -> None:
    with httpx.Client() as client:
        with session("sess_m", name="Manual", path="/m"), run("run_m", agent_id="ag"):
            client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
        ctx = context.get_current()
        for key, value in {
            "alephant.session.id": "sess_m", "alephant.session.name": "Manual", "alephant.session.path": "/m",
            "alephant.agent.id": "ag", "alephant.run.id": "run_m",
        }.items():
            ctx = baggage.set_baggage(key, value, ctx)
        token = context.attach(ctx)
        try:
            assert current().run_id == "run_m"
            client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
        finally:
            context.detach(token)
    by_session, by_hand = gateway.requests
    assert ids(by_session) | {"x-request-id": None} == ids(by_hand) | {"x-request-id": None}
    assert by_session.headers["x-request-id"] != by_hand.headers["x-request-id"]


def test_explicit_headers_are_never_overwritten(header_path, gateway: GatewayEmulator) -> None:
    client = _openai(gateway)
    with client, session("sess_auto"), run("run_auto", agent_id="auto"):
        client.chat.completions.create(
            **CHAT, extra_headers={"alephant-session-id": "sess_mine", "X-Request-Id": "req-mine"})
    (req,) = gateway.requests
    assert req.headers["alephant-session-id"] == "sess_mine"
    assert req.headers["x-request-id"] == "req-mine"
    assert req.headers["alephant-run-id"] == "run_auto"


def test_gateway_headers_for_other_clients() -> None:
    with session("sess_h", name="H"), run("run_h", agent_id="ag"):
        first, second = gateway_headers(), gateway_headers()
        given = gateway_headers(request_id="req-42")
    assert first["alephant-session-id"] == "sess_h" and first["Alephant-Agent-Id"] == "ag"
    assert first["x-request-id"] != second["x-request-id"]
    assert given["x-request-id"] == "req-42"
    assert set(gateway_headers()) == {"x-request-id"}


def test_generated_ids_are_unique_and_sortable() -> None:
    seen = []
    for _ in range(200):
        with session() as s, run() as r:
            seen.append((s.session_id, r.run_id))
    sessions = [s for s, _ in seen]
    assert len(set(sessions)) == 200
    assert all(re.fullmatch(r"sess_[0-9a-f]{32}", s) for s in sessions)
    assert all(re.fullmatch(r"run_[0-9a-f]{32}", r) for _, r in seen)
    assert sorted(s[:17] for s in sessions) == [s[:17] for s in sessions]  # time prefix never goes back


async def test_500_concurrent_tasks_on_one_client_never_mix(gateway: GatewayEmulator) -> None:
    async def task(i: int, client: httpx.AsyncClient) -> None:
        with session(f"sess_{i}"), run(f"run_{i}", agent_id=f"agent_{i % 7}"):
            await asyncio.sleep(0)
            r = await client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": str(i)})
            r.raise_for_status()

    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(task(i, client) for i in range(500)))
    assert len(gateway.requests) == 500
    for req in gateway.requests:
        i = req.json["input"]
        assert req.headers["alephant-session-id"] == f"sess_{i}"
        assert req.headers["alephant-run-id"] == f"run_{i}"
        assert req.headers["alephant-agent-id"] == f"agent_{int(i) % 7}"


def test_thread_pool_with_copied_context(gateway: GatewayEmulator) -> None:
    """Context reaches worker threads only when carried: contextvars.copy_context().run."""

    def work(i: int, client: httpx.Client) -> None:
        client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": str(i)}).raise_for_status()

    with httpx.Client() as client, ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for i in range(64):
            with session(f"sess_t{i}"), run(f"run_t{i}"):
                futures.append(pool.submit(contextvars.copy_context().run, work, i, client))
        for f in futures:
            f.result()
        # Without carrying the context a worker thread sees no session at all.
        pool.submit(work, -1, client).result()
    by_input = {r.json["input"]: r for r in gateway.requests}
    for i in range(64):
        assert by_input[str(i)].headers["alephant-session-id"] == f"sess_t{i}"
        assert by_input[str(i)].headers["alephant-run-id"] == f"run_t{i}"
    assert by_input["-1"].headers.get("alephant-session-id") is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: session("bad\r\nX-Evil: 1"), "session_id"),
        (lambda: session("a" * 257), "session_id"),
        (lambda: session(""), "session_id"),
        (lambda: session("ok", name="tab\there"), "name"),
        (lambda: session("ok", name="Müller"), "name"),
        (lambda: session("ok", path="/a b"), "path"),
        (lambda: session("ok", path="/" + "p" * 1024), "path"),
        (lambda: run("r\x00"), "run_id"),
        (lambda: run(agent_id="agent\n"), "agent_id"),
        (lambda: gateway_headers(request_id="x\ry"), "request_id"),
        (lambda: session(42), "session_id"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_raises_value_error_naming_the_field(call, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        call()


def test_bad_configuration_raises_value_error() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        alephant_otel.configure(gateway_url="ai.alephant.io")


def test_invalid_inbound_baggage_is_dropped_with_one_warning(
    gateway: GatewayEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = baggage.set_baggage("alephant.session.id", "sess_ok")
    ctx = baggage.set_baggage("alephant.run.id", "evil\r\nInjected: yes", ctx)
    ctx = baggage.set_baggage("alephant.session.name", "x" * 5000, ctx)
    token = context.attach(ctx)
    caplog.set_level(logging.WARNING, logger="alephant_otel")
    try:
        with httpx.Client() as client:
            for _ in range(5):
                # A priced model: an unpriced one adds its own once-per-process warning when this
                # test is the first in its process to use it (as on a pytest-xdist worker).
                client.post(
                    gateway.url + "/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": "x"}
                ).raise_for_status()
    finally:
        context.detach(token)
    assert len(gateway.requests) == 5
    for req in gateway.requests:
        assert req.headers["alephant-session-id"] == "sess_ok"
        assert req.headers.get("alephant-run-id") is None
        assert req.headers.get("injected") is None
        assert req.headers.get("alephant-session-name") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("alephant_otel")]
    # One warning per offending key, not one per request.
    assert sorted(m for r in warnings for m in ("alephant.run.id", "alephant.session.name") if m in r.getMessage()) == [
        "alephant.run.id", "alephant.session.name"]
    assert len(warnings) == 2


def test_decorators_sync_and_async(gateway: GatewayEmulator) -> None:
    @session(name="Decorated")
    def handle() -> str | None:
        return current().session_id

    @run(agent_id="deco")
    async def agent() -> tuple[str | None, str | None]:
        await asyncio.sleep(0)
        return current().agent_id, current().run_id

    first, second = handle(), handle()
    assert first and second and first != second  # each call is a new session
    agent_id, run_id = asyncio.run(agent())
    assert agent_id == "deco" and run_id and run_id.startswith("run_")
    # The async decorator enters the scope when the coroutine runs, not when it is created.
    coro = agent()
    assert current().agent_id is None
    assert asyncio.run(coro)[0] == "deco"


async def test_async_with_scopes(gateway: GatewayEmulator) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0)
    async with session("sess_awith", name="Async with") as s, run(agent_id="async-agent") as r:
        assert (s.session_id, r.agent_id) == ("sess_awith", "async-agent")
        await client.chat.completions.create(**CHAT)
    assert current().session_id is None
    (req,) = gateway.requests
    assert ids(req)["alephant-session-id"] == "sess_awith"
    assert ids(req)["alephant-run-id"] == r.run_id
    await client.close()


async def test_one_scope_object_entered_by_concurrent_tasks(gateway: GatewayEmulator, spans, caplog) -> None:
    # One run(...) object shared by tasks that exit in the order they entered: each task must
    # exit its own run (a stack on the object would pop the newest task's run in the oldest).
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0)
    shared = run(agent_id="pool-worker")
    mine: dict[int, str | None] = {}

    async def task(i: int) -> None:
        async with shared as r:
            mine[i] = r.run_id
            await asyncio.sleep(0.02 * i)
            await client.chat.completions.create(**CHAT, extra_headers={"x-task": str(i)})
            assert current().run_id == r.run_id

    with caplog.at_level(logging.ERROR, logger="opentelemetry.context"), session("sess_shared_scope"):
        await asyncio.gather(*(task(i) for i in range(6)))
    assert not [r for r in caplog.records if "detach" in r.getMessage()]
    assert len(set(mine.values())) == 6
    sent = {int(req.headers["x-task"]): req.headers["alephant-run-id"] for req in gateway.requests}
    assert sent == mine
    requests = {s.attributes["alephant.run.id"]: s for s in spans.get_finished_spans()
                if s.attributes.get("alephant.span.kind") == "request"}
    runs = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "run"]
    assert len(runs) == 6
    for span in runs:  # each run span ends after its own request, not another task's
        assert span.end_time >= requests[span.attributes["alephant.run.id"]].end_time
    await client.close()


async def test_a_scope_exited_in_another_task_still_ends(spans) -> None:
    # An async fixture may set up in one task and tear down in another.
    scope = session("sess_two_tasks")
    entered = await asyncio.create_task(scope.__aenter__())
    assert entered.session_id == "sess_two_tasks"
    await asyncio.create_task(scope.__aexit__(None, None, None))
    (span,) = spans.get_finished_spans()
    assert span.attributes["alephant.session.id"] == "sess_two_tasks"
    with pytest.raises(IndexError):
        scope.__exit__(None, None, None)  # nothing left open


def test_decorated_generator_keeps_its_run_to_itself(gateway: GatewayEmulator, spans, caplog) -> None:
    # A generator's body runs each time the consumer resumes it, and the consumer runs between
    # its yields: the generator's calls belong to its run, the consumer's to the consumer's scope.
    client = _openai(gateway)

    @run(agent_id="producer")
    def produce(n: int):
        for i in range(n):
            client.chat.completions.create(**CHAT, extra_headers={"x-who": f"producer-{i}"})
            got = yield current().agent_id
            assert got in (None, "ack")
        return "done"

    with client, caplog.at_level(logging.ERROR, logger="opentelemetry.context"):
        with session("sess_consumer"):
            gen = produce(2)
            assert next(gen) == "producer"
            assert current().agent_id is None  # nothing leaks to the consumer between steps
            client.chat.completions.create(**CHAT, extra_headers={"x-who": "consumer"})
            with session("sess_interleaved"):
                assert gen.send("ack") == "producer"
                with pytest.raises(StopIteration) as stop:
                    gen.send(None)  # the generator finishes inside another scope...
                assert stop.value.value == "done"
                assert current().session_id == "sess_interleaved"  # ...which is still in place
            assert current().session_id == "sess_consumer"
        assert current() == alephant_otel.Current()
    assert not [r for r in caplog.records if "detach" in r.getMessage()]
    sent = {req.headers["x-who"]: ids(req) for req in gateway.requests}
    assert sent["consumer"]["alephant-session-id"] == "sess_consumer"
    assert sent["consumer"]["alephant-run-id"] is None
    producer_runs = {sent[f"producer-{i}"]["alephant-run-id"] for i in range(2)}
    assert len(producer_runs) == 1 and None not in producer_runs
    # The generator's run belongs to the session it started in, whoever resumed it later.
    assert {sent[f"producer-{i}"]["alephant-session-id"] for i in range(2)} == {"sess_consumer"}
    (run_span,) = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "run"]
    assert run_span.attributes["alephant.total.requests"] == 2
    assert run_span.status.is_ok


def test_decorated_generator_closed_early_or_failing(gateway: GatewayEmulator, spans) -> None:
    @run(agent_id="gen")
    def items():
        yield 1
        yield 2
        raise RuntimeError("boom")

    for _ in items():
        break  # a consumer that stops early: the run ends, and did not fail
    with pytest.raises(RuntimeError, match="boom"):
        list(items())
    gen = items()
    next(gen)
    with pytest.raises(KeyError):
        gen.throw(KeyError("thrown in"))  # goes into the generator's body, at its yield
    assert current() == alephant_otel.Current()
    runs = sorted((s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "run"),
                  key=lambda s: s.start_time)
    assert [s.status.status_code.name for s in runs] == ["UNSET", "ERROR", "ERROR"]
    assert "boom" in (runs[1].status.description or "")
    assert "KeyError" in (runs[2].status.description or "")


async def test_decorated_async_generator_keeps_its_run_to_itself(gateway: GatewayEmulator, spans, caplog) -> None:
    # The streaming-agent shape: an async generator that streams a model's answer, consumed by
    # code (a web framework's streaming response) that makes calls of its own between chunks.
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0)

    @run(agent_id="writer")
    async def answer():
        stream = await client.chat.completions.create(
            **CHAT, stream=True, extra_headers={"x-who": "writer"})
        async for chunk in stream:
            assert current().agent_id == "writer"
            yield chunk

    with caplog.at_level(logging.ERROR, logger="opentelemetry.context"):
        async with session("sess_web"):
            chunks = 0
            async for _ in answer():
                chunks += 1
                assert current().agent_id is None
                if chunks == 2:
                    await client.embeddings.create(
                        model="openai/text-embedding-3-small", input="x", extra_headers={"x-who": "handler"})
            assert chunks > 2
        # Stopped early, abandoned by a cancelled consumer, cancelled inside: each ends its run.
        @run(agent_id="sleeper")
        async def slow():
            yield 1
            await asyncio.sleep(10)
            yield 2

        async with session("sess_stopped"):
            gen = answer()
            await gen.__anext__()
            await gen.aclose()

            async def consume(items, pause: bool) -> None:
                async for _ in items:
                    if pause:  # cancelled here, the generator waits at its yield
                        await asyncio.sleep(10)

            for make, pause in ((answer, True), (slow, False)):
                task = asyncio.create_task(consume(make(), pause))
                await asyncio.sleep(0.2)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                else:
                    pytest.fail("not cancelled")
                del task
                gc.collect()  # the event loop then closes the abandoned async generator
                await asyncio.sleep(0.05)
        assert current() == alephant_otel.Current()
    assert not [r for r in caplog.records if "detach" in r.getMessage()]
    sent = {req.headers["x-who"]: ids(req) for req in gateway.requests[:2]}
    assert sent["writer"]["alephant-agent-id"] == "writer"
    assert sent["handler"]["alephant-session-id"] == "sess_web"
    assert sent["handler"]["alephant-run-id"] is None
    runs = sorted((s for s in spans.get_finished_spans() if s.attributes.get("alephant.span.kind") == "run"),
                  key=lambda s: s.start_time)
    assert [s.attributes["alephant.session.id"] for s in runs] == ["sess_web"] + ["sess_stopped"] * 3
    # Closed at a yield: stopped, not failed. Cancelled in its own body: an error, as OTel's use_span has it.
    assert [s.status.status_code.name for s in runs] == ["UNSET", "UNSET", "UNSET", "ERROR"]
    assert "CancelledError" in (runs[-1].status.description or "")
    await client.close()


def test_scopes_leave_nothing_behind_in_the_context(gateway: GatewayEmulator) -> None:
    # A context keeps every variable ever set in it, for as long as it lives: the main
    # thread's, for the life of the process. Scopes must not add one per session.
    with session("warm-up"), run(agent_id="a"):
        pass
    before = len(contextvars.copy_context())
    for _ in range(200):
        with session(name="s"), run(agent_id="a"):
            pass
    assert len(contextvars.copy_context()) == before


def test_baggage_sent_to_the_gateway_follows_each_requests_own_baggage(gateway: GatewayEmulator) -> None:
    # The propagator remembers the last baggage it filtered: a request whose baggage differs
    # (a member of the application's own, then none again) must get its own verdict.
    def post_with(extra: dict[str, str]) -> str | None:
        ctx = context.get_current()
        for key, value in extra.items():
            ctx = baggage.set_baggage(key, value, ctx)
        token = context.attach(ctx)
        try:
            client.post(gateway.url + "/v1/embeddings", json={"model": "m", "input": "x"})
        finally:
            context.detach(token)
        header: str | None = gateway.requests[-1].headers.get("baggage")
        return header

    with httpx.Client() as client, session("sess_bag"):
        assert post_with({}) is None
        assert post_with({}) is None
        assert post_with({"tenant": "acme"}) == "tenant=acme"
        assert post_with({"tenant": "acme"}) == "tenant=acme"
        assert post_with({"tenant": "globex"}) == "tenant=globex"
        assert post_with({}) is None
    assert all(r.headers["alephant-session-id"] == "sess_bag" for r in gateway.requests)
