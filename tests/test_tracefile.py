"""The local trace file: OTLP/JSON lines as the Collector's file exporter writes them.

Spans come from a real SDK pipeline (``TracerProvider`` + ``BatchSpanProcessor``);
every line is checked with the official protobuf JSON parser, and concurrency
and failure are exercised with real processes, real file systems and real
resource limits.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _util import clean_env
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, format_span_id, format_trace_id

from alephant_otel.analytics._tracereader import default_trace_file, iter_trace_file
from alephant_otel.export._tracefile import TraceFileExporter, encode_request_line

LOGGER = "alephant_otel.export._tracefile"
CAMEL = re.compile(r"^[a-z][A-Za-z]*$")


# --- helpers ------------------------------------------------------------------------


def _spans_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [sp for rs in request["resourceSpans"] for ss in rs.get("scopeSpans", ()) for sp in ss.get("spans", ())]


def _hex_ids_to_base64(doc: dict[str, Any]) -> dict[str, Any]:
    """Undo the OTLP/JSON id rule so the generic protobuf JSON parser accepts the line."""

    def b64(value: str) -> str:
        return base64.b64encode(bytes.fromhex(value)).decode()

    for sp in _spans_of(doc):
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in sp:
                sp[key] = b64(sp[key])
        for link in sp.get("links", ()):
            link["traceId"] = b64(link["traceId"])
            link["spanId"] = b64(link["spanId"])
    return doc


def _parse_line(line: bytes) -> ExportTraceServiceRequest:
    """A line -> protobuf, through ``json_format.Parse`` (strict: unknown or misspelt keys fail)."""
    return json_format.Parse(json.dumps(_hex_ids_to_base64(json.loads(line))), ExportTraceServiceRequest())


def _all_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value] + [k for v in value.values() for k in _all_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _all_keys(v)]
    return []


def _pipeline(path: Path, **bsp: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(resource=Resource.create({"service.name": "tracefile-test"}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(TraceFileExporter(path), **bsp))
    return provider, memory


# --- the format -----------------------------------------------------------------------

ATTRS: dict[str, Any] = {
    "s": 'héllo\nworld \u2028 "quoted" </script>',
    "i": -(2**63),
    "big": 2**63 - 1,
    "f": 0.1,
    "nan": float("nan"),
    "inf": float("inf"),
    "b": False,
    "strs": ["a", "", "ü"],
    "ints": [1, -2, 3],
    "floats": [1.5, -0.25],
    "bools": [True, False],
    "empty": [],
}


def test_batch_processor_lines_are_otlp_json(tmp_path: Path) -> None:
    path = tmp_path / "traces.otlp.jsonl"
    provider, memory = _pipeline(path)
    tracer = provider.get_tracer("alephant-test", "1.2.3")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=ATTRS) as root:
        root.add_event("ev", {"k": "v", "n": 7}, timestamp=1_700_000_000_123_456_789)
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT, links=[trace.Link(root.get_span_context())]):
            pass
        root.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()

    lines = path.read_bytes().splitlines(keepends=True)
    assert lines
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)

    expected = {
        sp.span_id: sp for sp in encode_spans(memory.get_finished_spans()).resource_spans[0].scope_spans[0].spans
    }
    seen = {}
    for line in lines:
        for rs in _parse_line(line).resource_spans:
            assert {kv.key for kv in rs.resource.attributes} >= {"service.name", "telemetry.sdk.language"}
            for ss in rs.scope_spans:
                assert (ss.scope.name, ss.scope.version) == ("alephant-test", "1.2.3")
                seen.update({sp.span_id: sp for sp in ss.spans})
    # Field for field what the OTLP protobuf exporter would send: attributes of
    # every type, the event, the link, the status, times, kinds, flags.
    assert seen.keys() == expected.keys()
    for span_id, sp in expected.items():
        got = seen[span_id]
        # NaN != NaN in protobuf equality: compare the rest, then NaN on its own.
        nan_got = [kv for kv in got.attributes if kv.key == "nan"]
        nan_exp = [kv for kv in sp.attributes if kv.key == "nan"]
        assert len(nan_got) == len(nan_exp)
        for msg in (got, sp):
            keep = [kv for kv in msg.attributes if kv.key != "nan"]
            del msg.attributes[:]
            msg.attributes.extend(keep)
        assert got == sp

    # The OTLP/JSON specifics, on the raw JSON.
    docs = [json.loads(line) for line in lines]
    spans = {s["name"]: s for d in docs for s in _spans_of(d)}
    by_name = {s.name: s for s in memory.get_finished_spans()}
    for name in ("root", "child"):
        ctx = by_name[name].get_span_context()
        assert spans[name]["traceId"] == format_trace_id(ctx.trace_id)
        assert spans[name]["spanId"] == format_span_id(ctx.span_id)
        assert re.fullmatch(r"[0-9a-f]{32}", spans[name]["traceId"])
        assert re.fullmatch(r"[0-9a-f]{16}", spans[name]["spanId"])
    assert "parentSpanId" not in spans["root"]  # default values are left out, as the Collector does
    assert spans["child"]["parentSpanId"] == spans["root"]["spanId"]
    assert spans["child"]["links"][0] == {
        "traceId": spans["root"]["traceId"],
        "spanId": spans["root"]["spanId"],
        "flags": 256,
    }
    assert spans["root"]["kind"] == 2
    assert spans["child"]["kind"] == 3
    assert spans["root"]["status"] == {"message": "boom", "code": 2}
    assert spans["child"]["status"] == {}  # always present, as the Collector writes it
    assert isinstance(spans["root"]["startTimeUnixNano"], str)  # 64-bit ints as decimal strings
    assert int(spans["root"]["startTimeUnixNano"]) == by_name["root"].start_time
    assert spans["root"]["events"] == [
        {
            "timeUnixNano": "1700000000123456789",
            "name": "ev",
            "attributes": [{"key": "k", "value": {"stringValue": "v"}}, {"key": "n", "value": {"intValue": "7"}}],
        }
    ]
    values = {kv["key"]: kv["value"] for kv in spans["root"]["attributes"]}
    assert values == {
        "s": {"stringValue": ATTRS["s"]},
        "i": {"intValue": str(-(2**63))},
        "big": {"intValue": str(2**63 - 1)},
        "f": {"doubleValue": 0.1},
        "nan": {"doubleValue": "NaN"},
        "inf": {"doubleValue": "Infinity"},
        "b": {"boolValue": False},
        "strs": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": ""}, {"stringValue": "ü"}]}},
        "ints": {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "-2"}, {"intValue": "3"}]}},
        "floats": {"arrayValue": {"values": [{"doubleValue": 1.5}, {"doubleValue": -0.25}]}},
        "bools": {"arrayValue": {"values": [{"boolValue": True}, {"boolValue": False}]}},
        "empty": {"arrayValue": {}},
    }
    assert all(CAMEL.match(k) for d in docs for k in _all_keys(d)), "every key camelCase"
    assert "ü".encode() in b"".join(lines)  # UTF-8, not \\u escapes, like Go's encoder


# A line as the Collector's `file` exporter writes it (format: json), written by
# hand from the OTLP specification's "JSON Protobuf Encoding" section
# (opentelemetry-proto docs/specification.md: hex ids, camelCase, enums as ints,
# 64-bit ints as strings, defaults omitted) and the key order and always-present
# objects (resource, scope, status, value) of the Collector's pdata JSON
# marshaller (pdata/internal/generated_proto_*.go, MarshalJSON).
COLLECTOR_LINE = (
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},'
    '"scopeSpans":[{"scope":{"name":"shop","version":"0.1.0"},"spans":[{'
    '"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",'
    '"parentSpanId":"eee19b7ec3c1b173","flags":768,"name":"chat gpt-4o-mini","kind":3,'
    '"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001500000000",'
    '"attributes":[{"key":"example.str","value":{"stringValue":"sess_1"}},'
    '{"key":"example.int","value":{"intValue":"12"}},'
    '{"key":"example.float","value":{"doubleValue":0.0125}},'
    '{"key":"example.bool","value":{"boolValue":true}},'
    '{"key":"example.array","value":{"arrayValue":{"values":[{"stringValue":"stop"}]}}}],'
    '"events":[{"timeUnixNano":"1700000001000000000","name":"policy",'
    '"attributes":[{"key":"code","value":{"intValue":"403"}}]}],'
    '"links":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",'
    '"attributes":[{"key":"k","value":{"stringValue":"v"}}],"flags":256}],'
    '"status":{"message":"rate limited","code":2}}]}]}]}'
)


def _collector_equivalent_span() -> ReadableSpan:
    """The SDK span whose export should be exactly COLLECTOR_LINE."""
    trace_id = int("5b8efff798038103d269b633813fc60c", 16)
    return ReadableSpan(
        name="chat gpt-4o-mini",
        context=SpanContext(trace_id, int("eee19b7ec3c1b174", 16), is_remote=False, trace_flags=TraceFlags(1)),
        parent=SpanContext(trace_id, int("eee19b7ec3c1b173", 16), is_remote=True, trace_flags=TraceFlags(1)),
        resource=Resource({"service.name": "checkout"}),
        attributes={
            "example.str": "sess_1",
            "example.int": 12,
            "example.float": 0.0125,
            "example.bool": True,
            "example.array": ("stop",),
        },
        events=[Event("policy", {"code": 403}, timestamp=1_700_000_001_000_000_000)],
        links=[
            trace.Link(
                SpanContext(int("0af7651916cd43dd8448eb211c80319c", 16), int("b7ad6b7169203331", 16), False),
                {"k": "v"},
            )
        ],
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "rate limited"),
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_001_500_000_000,
        instrumentation_scope=InstrumentationScope("shop", "0.1.0"),
    )


def test_line_is_byte_for_byte_what_the_collector_writes() -> None:
    assert encode_request_line([_collector_equivalent_span()]) == COLLECTOR_LINE.encode() + b"\n"


def test_collector_line_is_valid_otlp_and_read_back(tmp_path: Path) -> None:
    # The sample itself is valid OTLP/JSON (else the test above proves nothing).
    parsed = _parse_line(COLLECTOR_LINE.encode())
    assert parsed.resource_spans[0].scope_spans[0].spans[0].status.code == 2

    path = tmp_path / "collector.jsonl"
    path.write_text(COLLECTOR_LINE + "\n")
    TraceFileExporter(path).export([_collector_equivalent_span()])
    reader = iter_trace_file(path)
    requests = list(reader)
    assert reader.corrupt == 0
    assert not reader.incomplete_tail
    assert len(requests) == 2
    assert requests[0] == requests[1] == json.loads(COLLECTOR_LINE)
    span = _spans_of(requests[0])[0]
    assert span["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert span["attributes"][1] == {"key": "example.int", "value": {"intValue": "12"}}


finite = st.floats(allow_nan=False)
int64 = st.integers(-(2**63), 2**63 - 1)
attr_value = st.one_of(
    st.text(),
    int64,
    finite,
    st.booleans(),
    st.lists(st.text(), max_size=4).map(tuple),
    st.lists(int64, max_size=4).map(tuple),
    st.lists(finite, max_size=4).map(tuple),
    st.lists(st.booleans(), max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=st.dictionaries(st.text(min_size=1, max_size=20), attr_value, max_size=8),
    name=st.text(max_size=30),
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
)
def test_any_span_round_trips_through_protobuf_json(
    attrs: dict[str, Any], name: str, trace_id: int, span_id: int
) -> None:
    span = ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False),
        resource=Resource({}),
        attributes=attrs,
        events=[Event("e", attrs, timestamp=1)],
        start_time=1,
        end_time=2,
    )
    line = encode_request_line([span])
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert _parse_line(line) == encode_spans([span])
    sp = _spans_of(json.loads(line))[0]
    assert sp["traceId"] == format_trace_id(trace_id)
    assert sp["spanId"] == format_span_id(span_id)


# --- flushing and concurrency -----------------------------------------------------------


def test_shutdown_flushes_every_span(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "traces.otlp.jsonl"  # parents are created
    # A long schedule delay: nothing is written on a timer, only by shutdown.
    provider, _ = _pipeline(path, schedule_delay_millis=60_000, max_export_batch_size=64, max_queue_size=4096)
    tracer = provider.get_tracer("t")
    for i in range(1000):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    provider.shutdown()
    names = [sp["name"] for req in iter_trace_file(path) for sp in _spans_of(req)]
    assert sorted(names) == sorted(f"s{i}" for i in range(1000))


def test_force_flush_writes_before_returning(tmp_path: Path) -> None:
    path = tmp_path / "traces.otlp.jsonl"
    provider, _ = _pipeline(path, schedule_delay_millis=60_000)
    with provider.get_tracer("t").start_as_current_span("one"):
        pass
    assert not path.exists()
    assert provider.force_flush()
    assert [sp["name"] for req in iter_trace_file(path) for sp in _spans_of(req)] == ["one"]
    provider.shutdown()


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from alephant_otel.export._tracefile import TraceFileExporter

    path, go, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(TraceFileExporter(path), max_export_batch_size=4, schedule_delay_millis=1)
    )
    tracer = provider.get_tracer("worker")
    pad = tag * 6000  # lines of ~25 kB: far over PIPE_BUF and a page
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(n):
        with tracer.start_as_current_span(f"{tag}-{i}", attributes={"pad": pad}):
            pass
    provider.shutdown()
    """
)


def test_processes_appending_concurrently_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    go = tmp_path / "go"
    tags, n = ["a", "b", "c", "d", "e", "f"], 300
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(go), tag, str(n)], env=clean_env(), stderr=subprocess.PIPE
        )
        for tag in tags
    ]
    time.sleep(0.3)
    go.touch()  # start the writers together
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()

    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a whole line
    names: list[str] = []
    for line in lines[:-1]:
        request = _parse_line(line)  # every line whole, valid OTLP
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                names.extend(sp.name for sp in ss.spans)
    assert sorted(names) == sorted(f"{t}-{i}" for t in tags for i in range(n))
    reader = iter_trace_file(path)
    assert sum(len(_spans_of(r)) for r in reader) == len(tags) * n
    assert reader.corrupt == 0


# --- failure --------------------------------------------------------------------------------


def _one_span() -> ReadableSpan:
    return ReadableSpan(
        name="s", context=SpanContext(1, 2, is_remote=False), resource=Resource({}), start_time=1, end_time=2
    )


def test_unwritable_path_fails_quietly_once_then_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory should be")
    path = blocker / "sub" / "traces.jsonl"  # ENOTDIR, even as root
    exporter = TraceFileExporter(path)
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    results = [exporter.export([_one_span()]) for _ in range(50)]
    assert results == [SpanExportResult.FAILURE] * 50
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()

    # The path becomes writable: writing resumes (directories created), and says so.
    blocker.unlink()
    assert exporter.export([_one_span()]) is SpanExportResult.SUCCESS
    assert len(list(iter_trace_file(path))) == 1
    assert any("again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)

    # A new outage gets its own (single) warning.
    path.unlink()
    path.mkdir()  # the file is now a directory: EISDIR
    assert [exporter.export([_one_span()]) for _ in range(10)] == [SpanExportResult.FAILURE] * 10
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 2


def test_unwritable_path_behind_a_batch_processor_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = Path("/proc/alephant-otel-test/traces.jsonl")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(TraceFileExporter(path), max_export_batch_size=4))
    tracer = provider.get_tracer("t")
    for _ in range(40):
        with tracer.start_as_current_span("s"):
            pass
    provider.shutdown()
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in records] == [LOGGER]  # one warning, and no exception logged by the SDK
    assert not path.exists()


def test_export_after_shutdown_is_a_failure_not_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exporter = TraceFileExporter(tmp_path / "t.jsonl")
    assert exporter.export([_one_span()]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert [exporter.export([_one_span()]) for _ in range(5)] == [SpanExportResult.FAILURE] * 5
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert len(list(iter_trace_file(tmp_path / "t.jsonl"))) == 1
    assert exporter.force_flush()


def test_span_that_cannot_be_encoded_does_not_cost_the_batch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = ReadableSpan(name="\ud800", context=SpanContext(1, 3, is_remote=False), resource=Resource({}))
    path = tmp_path / "t.jsonl"
    result = TraceFileExporter(path).export([_one_span(), bad, _one_span()])
    assert result is SpanExportResult.SUCCESS
    assert [len(_spans_of(r)) for r in iter_trace_file(path)] == [2]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


DISK_FULL_CHILD = textwrap.dedent(
    """
    import json, logging, os, resource, signal, sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext
    from alephant_otel.export._tracefile import TraceFileExporter

    warnings = []
    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())
    logging.getLogger("alephant_otel").addHandler(Keep())

    def span(size):
        return ReadableSpan(name="x" * size, context=SpanContext(1, 2, is_remote=False),
                            resource=Resource({}), start_time=1, end_time=2)

    path = sys.argv[1]
    exporter = TraceFileExporter(path)
    out = {"first": exporter.export([span(10)]).name}
    size = os.path.getsize(path)
    # A real "file too large" from the kernel, mid-line: the write is cut at the limit.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
    out["full"] = [exporter.export([span(5000)]).name for _ in range(20)]
    out["size_after_full"] = os.path.getsize(path)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    out["after"] = exporter.export([span(5000)]).name
    out["size"] = size
    out["warnings"] = warnings
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_disk_full_mid_line_leaves_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, str(path)],
        env=clean_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["first"] == "SUCCESS"
    assert out["full"] == ["FAILURE"] * 20
    assert out["size_after_full"] == out["size"]  # the cut-off fragment was removed
    assert out["after"] == "SUCCESS"
    assert len(out["warnings"]) == 1
    reader = iter_trace_file(path)
    assert [len(_spans_of(r)) for r in reader] == [1, 1]
    assert reader.corrupt == 0


# --- reading ----------------------------------------------------------------------------------


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = encode_request_line([_one_span()])
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        good
        + b"not json at all\n"
        + b"\n   \n"  # blank lines: ignored, not corrupt
        + b"[1, 2, 3]\n"  # JSON, not an object
        + b'{"resourceMetrics": []}\n'  # another signal's request
        + b'{"resourceSpans": 5}\n'
        + good[: len(good) // 2]
        + b"\n"  # a line cut off by a writer that died, then more lines
        + b"\xff\xfe binary\n"
        + good.replace(b"\n", b"\r\n")  # CRLF line endings are fine
        + b'{"resource_spans": []}\n'  # proto field names are valid protobuf JSON too
        + good[:40]  # a writer in the middle of a write: not corruption
    )
    reader = iter_trace_file(path)
    requests = list(reader)
    assert len(requests) == 3
    assert reader.corrupt == 6
    assert reader.incomplete_tail


def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(encode_request_line([_one_span()]).rstrip(b"\n"))
    reader = iter_trace_file(path)
    assert len(list(reader)) == 1
    assert (reader.corrupt, reader.incomplete_tail) == (0, False)


def test_reader_errors_and_close(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        next(iter_trace_file(tmp_path / "missing.jsonl"))
    path = tmp_path / "t.jsonl"
    path.write_bytes(encode_request_line([_one_span()]) * 3)
    with iter_trace_file(path) as reader:
        assert next(reader)
    assert list(reader) == []


def test_exporter_rejects_an_empty_path() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        TraceFileExporter("")


# --- default location ------------------------------------------------------------------------


def test_default_trace_file_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_trace_file() == tmp_path / "data" / "alephant-otel" / "traces.otlp.jsonl"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # invalid per the XDG spec: ignored
    expected = tmp_path / "home" / ".local" / "share" / "alephant-otel" / "traces.otlp.jsonl"
    assert default_trace_file() == expected
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_trace_file() == expected


def test_reader_takes_a_gzipped_file_and_counts_a_cut_one(tmp_path: Path) -> None:
    import gzip

    line = encode_request_line([_one_span()])
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(line * 3))
    reader = iter_trace_file(path)
    assert len(list(reader)) == 3
    assert reader.corrupt == 0
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(line * 3)[:-10])  # the stream's end marker is lost
    reader = iter_trace_file(cut)
    list(reader)
    assert reader.corrupt == 1
