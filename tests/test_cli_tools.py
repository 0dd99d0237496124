"""Tool steps, users and metadata read back: ``sessions list/show/vitals`` as a subprocess, on a real trace file.

The trace file is written by a real process (the emulator, the openai SDK,
``configure(trace_file=...)``), so what is read back is what the library writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _util import BIN, clean_env

from alephant_otel.analytics._convert import records_from_otlp
from alephant_otel.analytics._reconstruct import SessionBuilder
from alephant_otel.analytics._report import show_json
from alephant_otel.analytics._rows import record_from_row, rows_from_otlp

WRITER = """
import sys, openai, alephant_otel as a
from alephant_otel.testing import GatewayEmulator
with GatewayEmulator() as gw:
    a.configure(gateway_url=gw.url, trace_file=sys.argv[1])
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-x", max_retries=0)
    for i, (user, plan) in enumerate([("u1", "pro"), ("u2", "free"), ("u1", "pro")]):
        with a.session(f"sess_{i}", user_id=user, metadata={"plan": plan}), a.run(f"run_{i}", agent_id="triage"):
            c.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            with a.tool("search", call_id=f"call_{i}", cost_usd=0.5 * (i + 1)):
                pass
            try:
                with a.tool("crm"):
                    raise LookupError("no such customer")
            except LookupError:
                pass
"""


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tools") / "trace.jsonl"
    subprocess.run([sys.executable, "-c", WRITER, str(path)], env=clean_env(), check=True, timeout=120)
    return path


def cli(trace_file: Path, *argv: str) -> str:
    got = subprocess.run(
        [str(BIN / "alephant-otel"), "sessions", *argv, "--source", str(trace_file)],
        capture_output=True,
        text=True,
        env=clean_env(COLUMNS="200"),
        timeout=120,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    return got.stdout


def cli_json(trace_file: Path, *argv: str) -> dict:
    return json.loads(cli(trace_file, *argv, "--json"))


def model_costs(trace_file: Path) -> dict[str, float]:
    costs: dict[str, float] = {}
    for rec in records_from_otlp(
        rs for line in trace_file.read_text().splitlines() for rs in json.loads(line)["resourceSpans"]
    ):
        if rec.kind == "request":
            costs[rec.session_id] = costs.get(rec.session_id, 0.0) + rec.cost_usd
    return costs


def test_list_cost_is_model_plus_tool_cost_and_has_user_and_metadata(trace_file: Path) -> None:
    rows = {r["session_id"]: r for r in cli_json(trace_file, "list")["sessions"]}
    models = model_costs(trace_file)
    assert set(rows) == set(models) == {"sess_0", "sess_1", "sess_2"}
    for i in range(3):
        row = rows[f"sess_{i}"]
        assert models[f"sess_{i}"] > 0
        assert row["cost_usd"] == pytest.approx(models[f"sess_{i}"] + 0.5 * (i + 1))
        assert row["tool_cost_usd"] == pytest.approx(0.5 * (i + 1))
        assert row["tool_calls"] == 2 and row["request_count"] == 1
        assert row["rollup_matches"] is True  # the session span's total counts the tools too
    assert (rows["sess_1"]["user_id"], rows["sess_1"]["metadata"]) == ("u2", {"plan": "free"})
    assert (rows["sess_2"]["user_id"], rows["sess_2"]["metadata"]) == ("u1", {"plan": "pro"})


def test_list_user_filter(trace_file: Path) -> None:
    assert sorted(r["session_id"] for r in cli_json(trace_file, "list", "--user", "u1")["sessions"]) == [
        "sess_0",
        "sess_2",
    ]
    assert cli_json(trace_file, "list", "--user", "nobody")["sessions"] == []
    text = cli(trace_file, "list", "--user", "u2")
    assert "sess_1" in text and "sess_0" not in text


def test_show_has_the_tool_steps(trace_file: Path) -> None:
    doc = cli_json(trace_file, "show", "sess_1")["session"]
    assert (doc["user_id"], doc["metadata"]) == ("u2", {"plan": "free"})
    (run,) = doc["runs_tree"]
    assert run["run_id"] == "run_1" and run["tool_calls"] == 2
    assert [(t["name"], t["call_id"], t["cost_usd"], t["error"]) for t in run["tools"]] == [
        ("search", "call_1", 1.0, False),
        ("crm", None, 0.0, True),
    ]
    assert run["cost_usd"] == pytest.approx(run["requests"][0]["cost_usd"] + 1.0)
    text = cli(trace_file, "show", "sess_1")
    assert "user u2" in text
    assert "tool search  call_1" in text and "$1.00" in text
    assert "tool crm" in text and "error" in text


def test_vitals_by_user_tool_and_metadata(trace_file: Path) -> None:
    models = model_costs(trace_file)

    def groups(by: str) -> dict[str, dict]:
        doc = cli_json(trace_file, "vitals", "--by", by)
        assert doc["by"]["dimension"] == by
        return {g["key"]: g for g in doc["by"]["groups"]}

    users = groups("user")
    assert users["u1"]["sessions"] == 2
    assert users["u1"]["cost_usd"] == pytest.approx(models["sess_0"] + models["sess_2"] + 0.5 + 1.5)
    assert users["u2"]["cost_usd"] == pytest.approx(models["sess_1"] + 1.0)
    tools = groups("tool")
    assert (tools["search"]["request_count"], tools["search"]["cost_usd"]) == (3, pytest.approx(3.0))
    assert (tools["crm"]["request_count"], tools["crm"]["errors"], tools["crm"]["cost_usd"]) == (3, 3, 0.0)
    plans = groups("metadata.plan")
    assert {k: g["sessions"] for k, g in plans.items()} == {"pro": 2, "free": 1}
    assert plans["free"]["cost_usd"] == pytest.approx(users["u2"]["cost_usd"])
    models_by = groups("model")
    assert sum(g["request_count"] for g in models_by.values()) == 3
    # Without --by: today's two tables; the agent's share includes its tool calls.
    doc = cli_json(trace_file, "vitals")
    assert "by" not in doc
    (agent,) = doc["by_agent"]
    assert agent["cost_usd"] == pytest.approx(doc["totals"]["cost_usd"]) == pytest.approx(sum(models.values()) + 3.0)
    text = cli(trace_file, "vitals", "--by", "metadata.plan")
    assert "cost by metadata.plan" in text and "cost by agent" not in text


def test_vitals_by_an_unknown_dimension_is_a_usage_error(trace_file: Path) -> None:
    got = subprocess.run(
        [str(BIN / "alephant-otel"), "sessions", "vitals", "--by", "colour", "--source", str(trace_file)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert got.returncode == 2
    assert "unknown breakdown 'colour'" in got.stderr and "Traceback" not in got.stderr


def test_the_fast_reader_gives_the_tools_users_and_metadata_of_the_record_path(trace_file: Path) -> None:
    resource_spans = [rs for line in trace_file.read_text().splitlines() for rs in json.loads(line)["resourceSpans"]]
    rows: list[tuple[object, ...]] = []
    rows_from_otlp(resource_spans, rows)
    fast, reference = SessionBuilder(), SessionBuilder()
    for row in rows:
        if row[0]:
            fast._add_request_row(row)
        else:
            fast.add(record_from_row(row))
    reference.add_all(records_from_otlp(resource_spans))
    got = [show_json(s, source="", corrupt=0) for s in fast.build(now_ns=1 << 62)]
    want = [show_json(s, source="", corrupt=0) for s in reference.build(now_ns=1 << 62)]
    assert got == want
    assert [s["session"]["metadata"] for s in got] == [{"plan": "pro"}, {"plan": "free"}, {"plan": "pro"}]
    assert all(s["session"]["tool_calls"] == 2 for s in got)


def test_flat_backend_spans_carry_tools_users_and_metadata() -> None:
    """Jaeger tags and Phoenix attributes (flattened) read as the trace file's spans do."""
    from alephant_otel.analytics._convert import record_from_flat

    def flat(span_id: str, parent: str | None, name: str, attrs: dict) -> object:
        return record_from_flat(
            trace_id="ab" * 16,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            start_ns=1,
            end_ns=2,
            error=False,
            status_message="",
            attributes=attrs,
        )

    ids = {"alephant.session.id": "sess_f", "user.id": "u9", "alephant.metadata.plan": "team"}
    builder = SessionBuilder()
    builder.add_all(
        [
            flat("00000000000000a1", None, "session", {**ids, "alephant.span.kind": "session"}),
            flat(
                "00000000000000b1",
                "00000000000000a1",
                "invoke_agent x",
                {**ids, "alephant.span.kind": "run", "alephant.run.id": "run_f"},
            ),
            # Written without alephant.span.kind (another producer): inferred from its name and tool name.
            flat(
                "00000000000000c1",
                "00000000000000b1",
                "execute_tool lookup",
                {**ids, "gen_ai.tool.name": "lookup", "alephant.cost.usd": 0.25},
            ),
        ]
    )
    (s,) = builder.build(now_ns=1 << 62)
    assert (s.user_id, s.metadata, s.tool_calls, s.cost_usd) == ("u9", {"plan": "team"}, 1, 0.25)
    assert [t.name for t in s.runs[0].tools] == ["lookup"]
