"""What the gateway answers is judged, not trusted (issue 36), with the real openai SDK on loopback.

Impossible usage or cost in an answer never becomes a span attribute (one
warning says so); a 2xx answer is never an error span because of what it
carries: a fine-tuning job, a video or an eval run has an ``error`` field of
its own, the state of the thing, while the call that fetched it succeeded.
Failure is the status code and the API's error envelope.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from alephant_otel import _names as n
from alephant_otel import session
from alephant_otel.testing import Fault, GatewayEmulator

MODEL = "openai/gpt-4o-mini"
USAGE_ATTRS = (
    n.GEN_AI_USAGE_INPUT_TOKENS,
    n.GEN_AI_USAGE_OUTPUT_TOKENS,
    n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)


def client(gateway: GatewayEmulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)


def only_span(spans: InMemorySpanExporter) -> ReadableSpan:
    (span,) = [s for s in spans.get_finished_spans() if s.name != n.SESSION_SPAN_NAME]
    return span


def completion(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-odd",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi."}}],
        "usage": usage,
    }


def impossible_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and "impossible" in r.getMessage()]


# --- impossible usage and cost ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "cost"),
    [
        ({"prompt_tokens": -5, "completion_tokens": 2_000_000_000, "total_tokens": 0}, "5000000"),
        (
            {
                "prompt_tokens": True,
                "completion_tokens": -1,
                "total_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 1_000_000_001},
                "completion_tokens_details": {"reasoning_tokens": False},
            },
            "-0.5",
        ),
    ],
    ids=["negative-huge", "booleans"],
)
def test_impossible_usage_and_cost_never_become_attributes_and_warn_once(
    gateway: GatewayEmulator,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    usage: dict[str, Any],
    cost: str,
) -> None:
    body = completion(usage)
    gateway.add_fault(Fault.status(200, body=body, headers={n.DEFAULT_COST_HEADER: cost}), times=2)
    with caplog.at_level(logging.DEBUG, logger="alephant_otel"), client(gateway) as c:
        for _ in range(2):
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    finished = spans.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        a = span.attributes or {}
        assert not [k for k in USAGE_ATTRS if k in a], dict(a)
        assert n.ATTR_COST_USD not in a
        assert span.status.status_code is not StatusCode.ERROR
        assert a[n.GEN_AI_RESPONSE_ID] == "chatcmpl-odd"  # the rest of the answer is read
    assert len(impossible_warnings(caplog)) == 1


def test_possible_usage_at_the_limits_is_kept(
    gateway: GatewayEmulator, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    usage = {"prompt_tokens": 1_000_000_000, "completion_tokens": 0, "total_tokens": 1_000_000_000}
    gateway.add_fault(Fault.status(200, body=completion(usage), headers={n.DEFAULT_COST_HEADER: "1000000"}))
    with caplog.at_level(logging.DEBUG, logger="alephant_otel"), client(gateway) as c:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    a = only_span(spans).attributes or {}
    assert (a[n.GEN_AI_USAGE_INPUT_TOKENS], a[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == (1_000_000_000, 0)
    assert a[n.ATTR_COST_USD] == 1e6
    assert not impossible_warnings(caplog)


# --- a 2xx resource with an error field is not a failed call ------------------------------------------------

FT_JOB = {
    "id": "ftjob-abc",
    "object": "fine_tuning.job",
    "created_at": 1,
    "fine_tuned_model": None,
    "finished_at": None,
    "hyperparameters": {"n_epochs": "auto"},
    "model": "gpt-4o-mini-2024-07-18",
    "organization_id": "org-1",
    "result_files": [],
    "seed": 7,
    "status": "failed",
    "trained_tokens": None,
    "training_file": "file-1",
    "validation_file": None,
}
VIDEO = {
    "id": "video_1",
    "object": "video",
    "created_at": 1,
    "completed_at": None,
    "expires_at": None,
    "model": "sora-2",
    "progress": 0,
    "seconds": "4",
    "size": "720x1280",
    "remixed_from_video_id": None,
    "status": "failed",
}
EVAL_RUN = {
    "id": "evalrun_1",
    "object": "eval.run",
    "eval_id": "eval_1",
    "created_at": 1,
    "name": "nightly",
    "model": "gpt-4o-mini",
    "status": "failed",
    "report_url": "https://example.invalid/r",
    "metadata": None,
    "data_source": {"type": "jsonl", "source": {"type": "file_id", "id": "file-1"}},
    "per_model_usage": [],
    "per_testing_criteria_results": [],
    "result_counts": {"errored": 1, "failed": 0, "passed": 0, "total": 1},
}

Call = Callable[[openai.OpenAI], Any]
RESOURCES: list[tuple[str, str, dict[str, Any], Call]] = [
    (
        "fine-tuning-job-null-error",
        "/v1/fine_tuning/jobs/ftjob-abc",
        {**FT_JOB, "status": "running", "error": {"code": None, "message": None, "param": None}},
        lambda c: c.fine_tuning.jobs.retrieve("ftjob-abc"),
    ),
    (
        "fine-tuning-job-failed",
        "/v1/fine_tuning/jobs/ftjob-abc",
        {**FT_JOB, "error": {"code": "invalid_training_file", "message": "The file is invalid.", "param": None}},
        lambda c: c.fine_tuning.jobs.retrieve("ftjob-abc"),
    ),
    (
        "video-failed",
        "/v1/videos/video_1",
        # The message names moderation: once read as a failed call, it was even an interception.
        {**VIDEO, "error": {"code": "moderation_blocked", "message": "Blocked by our moderation system."}},
        lambda c: c.videos.retrieve("video_1"),
    ),
    (
        "eval-run-failed",
        "/v1/evals/eval_1/runs/evalrun_1",
        {**EVAL_RUN, "error": {"code": "grader_error", "message": "The grader failed."}},
        lambda c: c.evals.runs.retrieve("evalrun_1", eval_id="eval_1"),
    ),
]


# openai's notices on videos.* and evals.*
@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning", "ignore:The Evals API:DeprecationWarning")
@pytest.mark.parametrize(("path", "body", "call"), [r[1:] for r in RESOURCES], ids=[r[0] for r in RESOURCES])
def test_a_2xx_resource_with_an_error_field_is_not_an_error_span(
    gateway: GatewayEmulator, spans: InMemorySpanExporter, path: str, body: dict[str, Any], call: Call
) -> None:
    gateway.add_fault(Fault.status(200, body=body), path=path)
    with session("sess_res"), client(gateway) as c:
        got = call(c)
    assert got.status == body["status"]  # the SDK read the resource, error field and all
    span = only_span(spans)
    a = span.attributes or {}
    assert span.status.status_code is not StatusCode.ERROR, span.status.description
    assert n.ATTR_ERROR_TYPE not in a
    assert n.ATTR_INTERCEPTED not in a
    assert not [e for e in span.events if e.name == n.EVENT_POLICY]


@pytest.mark.parametrize("status", [400, 404, 500])
def test_a_4xx_or_5xx_error_envelope_is_still_an_error_span(
    gateway: GatewayEmulator, spans: InMemorySpanExporter, status: int
) -> None:
    envelope = {"error": {"message": "No such job: ftjob-abc", "type": "invalid_request_error", "code": None}}
    gateway.add_fault(Fault.status(status, body=envelope), path="/v1/fine_tuning/jobs/ftjob-abc")
    with client(gateway) as c, pytest.raises(openai.APIStatusError):
        c.fine_tuning.jobs.retrieve("ftjob-abc")
    span = only_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ATTR_ERROR_TYPE] == str(status)


def test_an_error_envelope_in_a_200_body_is_still_an_error_span(
    gateway: GatewayEmulator, spans: InMemorySpanExporter
) -> None:
    """A proxy that answers 200 with the API's error envelope and nothing else: the call failed."""
    envelope = {"error": {"message": "Upstream overloaded", "type": "server_error", "code": None}}
    gateway.add_fault(Fault.status(200, body=envelope))
    with client(gateway) as c:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    span = only_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ATTR_ERROR_TYPE] == "server_error"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_a_mid_stream_error_is_still_an_error_span(
    gateway: GatewayEmulator, spans: InMemorySpanExporter, path: str
) -> None:
    gateway.add_fault(Fault.stream_error(2, error_type="server_error", message="Server error"), path=path)
    # The SDK raises on the chat error chunk; the Responses "error" event it hands over as an event.
    with client(gateway) as c, contextlib.suppress(openai.APIError):
        if path.endswith("/responses"):
            for _ in c.responses.create(model=MODEL, input="hi", stream=True):
                pass
        else:
            for _ in c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True):
                pass
    span = only_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ATTR_ERROR_TYPE] == "server_error"


# --- values read back from backends ------------------------------------------------------------


def test_values_from_a_backend_that_cannot_be_true_are_dropped_and_counted() -> None:
    """Jaeger tags and Phoenix attributes come as plain values: JSON true is a Python int there."""
    from alephant_otel.analytics._convert import record_from_flat

    attrs: dict[str, Any] = {
        n.ATTR_SPAN_KIND: "request",
        n.ATTR_SESSION_ID: "sess_b",
        n.GEN_AI_USAGE_INPUT_TOKENS: True,
        n.GEN_AI_USAGE_OUTPUT_TOKENS: -1,
        n.ATTR_COST_USD: 2e6,
        n.ATTR_RETRY_ATTEMPT: -2,
        "http.response.status_code": False,
    }
    rec = record_from_flat(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id=None,
        name="chat m",
        start_ns=1,
        end_ns=2,
        error=False,
        status_message="",
        attributes=attrs,
    )
    assert (rec.input_tokens, rec.output_tokens, rec.cost_usd, rec.retry_attempt, rec.http_status) == (
        None,
        None,
        None,
        0,
        None,
    )
    assert rec.corrupt_values == 5
    fine = record_from_flat(
        trace_id="ab" * 16,
        span_id="ef" * 8,
        parent_span_id=None,
        name="session",
        start_ns=1,
        end_ns=2,
        error=False,
        status_message="",
        attributes={n.ATTR_SESSION_ID: "sess_b", n.ATTR_TOTAL_COST_USD: -3.0, n.ATTR_TOTAL_INPUT_TOKENS: True},
    )
    assert fine.rollup is not None
    assert (fine.rollup.cost_usd, fine.rollup.input_tokens, fine.corrupt_values) == (0.0, 0, 2)
