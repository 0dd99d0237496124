"""What content capture costs, by what runs where (counts, not timings: they hold on a busy CI machine).

- Off (the default), not one function of the content modules runs, on any thread: the request path
  pays an attribute check per response and the export path a flag check (the callgrind figures are in
  benchmarks/README.md, "Content capture").
- On, the caller's thread only hangs the bodies' references on the span; the messages are parsed,
  assembled, capped and serialised in the batch exporter's thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import openai
from _util import clean_env, wait_for
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import alephant_otel
from alephant_otel import _names as n
from alephant_otel.testing import GatewayEmulator

CONTENT_MODULES = tuple(
    f"alephant_otel/record/{m}.py" for m in ("_content", "_contentcap", "_contentin", "_contentout")
)


@contextmanager
def calls_by_thread() -> Iterator[dict[str, Counter[str]]]:
    """Python function calls into the content modules, by thread name, on every thread."""
    seen: dict[str, Counter[str]] = {}
    lock = threading.Lock()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.replace("\\", "/").endswith(CONTENT_MODULES):
            name = threading.current_thread().name
            with lock:
                seen.setdefault(name, Counter())[frame.f_code.co_name] += 1

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def _run(capture: bool | None) -> tuple[dict[str, Counter[str]], list[Any]]:
    """The calls and the request spans of 10 requests, in a fresh process (content never on before).

    A process of its own: the export step's flag stays set once content was kept, as it must for
    the spans still in flight, so an earlier test that switched capture on would be counted here.
    """
    out = subprocess.run(
        [sys.executable, __file__, "on" if capture else "off"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    seen, spans = json.loads(out.stdout.splitlines()[-1])
    return {k: Counter(v) for k, v in seen.items()}, spans


def _work(capture: bool | None) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    with GatewayEmulator() as gw:
        more = {} if capture is None else {"capture_content": capture}
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider, **more)
        client = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-test-cost-0000", max_retries=0)
        with client, calls_by_thread() as seen:
            # Added here so that its thread is profiled (threading.setprofile reaches new threads
            # only); exported by that thread within 10 ms (a flush exports on the caller's thread).
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
            for i in range(5):
                client.chat.completions.create(
                    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}]
                )
                with client.chat.completions.create(
                    model="openai/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "a stream"}]
                ) as stream:
                    for _ in stream:
                        pass
            wait_for(lambda: len(_requests(exporter)) == 10)
        provider.shutdown()
    spans = [dict(s.attributes or {}) for s in _requests(exporter)]
    print(json.dumps([seen, spans], default=list))


def _requests(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if (s.attributes or {}).get(n.ATTR_SPAN_KIND) == "request"]


def test_the_profiled_modules_exist() -> None:
    # A module moved away would make the "nothing runs" check below pass vacuously.
    package = Path(alephant_otel.__file__).parent
    assert all((package / m.removeprefix("alephant_otel/")).is_file() for m in CONTENT_MODULES)


def test_off_no_content_function_runs_on_any_thread() -> None:
    seen, spans = _run(None)
    assert len(spans) == 10 and all(n.GEN_AI_INPUT_MESSAGES not in s for s in spans)
    assert seen == {}


def test_on_the_messages_are_built_off_the_callers_thread() -> None:
    seen, spans = _run(True)
    assert len(spans) == 10 and all(n.GEN_AI_OUTPUT_MESSAGES in s for s in spans)
    caller = seen.get("MainThread", Counter())
    # On the caller's thread: the references kept, and moved to the ended span. Nothing else.
    assert set(caller) <= {"keep", "__init__", "adopt"}, caller
    assert caller["keep"] == 10
    elsewhere = Counter[str]()
    for name, counts in seen.items():
        if name != "MainThread":
            elsewhere.update(counts)
    assert elsewhere["_build"] == 10 and elsewhere["output_messages"] == 10 and elsewhere["fit_messages"] == 10


if __name__ == "__main__":
    _work(True if sys.argv[1] == "on" else None)
