"""A request whose usage never arrived reads "usage unknown", not 0/0 $0.

langchain-openai with a custom base_url streams without ``stream_options``: the
stream then has no usage chunk, and the span gets no ``gen_ai.usage.*`` at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alephant_otel import run, session
from alephant_otel.cli._main import main
from alephant_otel.export._tracefile import TraceFileExporter


def _trace(gateway, spans, tmp_path: Path) -> Path:
    import openai

    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    messages = [{"role": "user", "content": "hello"}]
    with client, session("sess_unk"), run(agent_id="writer"):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
        for _ in client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, stream=True):
            pass  # no stream_options: no usage chunk
    path = tmp_path / "unk.otlp.jsonl"
    exporter = TraceFileExporter(path)
    exporter.export(spans.get_finished_spans())
    exporter.shutdown()
    return path


def test_stream_without_usage_reads_usage_unknown(
    gateway, spans, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _trace(gateway, spans, tmp_path)
    streamed = [s for s in spans.get_finished_spans() if s.attributes.get("alephant.request.id")][1]
    assert not any(k.startswith("gen_ai.usage.") for k in streamed.attributes)  # how the span marks it

    assert main(["sessions", "show", "sess_unk", "--source", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)["session"]
    known, unknown = doc["runs_tree"][0]["requests"]
    assert known["usage_unknown"] is None and known["input_tokens"] > 0 and known["cost_usd"] > 0
    assert unknown["usage_unknown"] and unknown["streaming"] is True
    assert (unknown["input_tokens"], unknown["output_tokens"], unknown["cost_usd"], unknown["cost_share"]) == (
        None,
        None,
        None,
        None,
    )
    # Unknown counts nothing in the sums, and the session and run say how many they left out.
    assert doc["input_tokens"] == known["input_tokens"] and doc["cost_usd"] == known["cost_usd"]
    assert doc["requests_usage_unknown"] == 1 and doc["runs_tree"][0]["requests_usage_unknown"] == 1
    assert doc["request_count"] == 2

    assert main(["sessions", "show", "sess_unk", "--source", str(path)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "chat " in line]
    assert ["usage unknown" in line for line in lines] == [False, True]
    assert "0/0 tok" not in out and "$0.00 " not in lines[1]
    assert out.splitlines()[0].count("1 req usage unknown") == 1  # the session line

    from alephant_otel.analytics import load_sessions
    from alephant_otel.web._view import waterfall

    (s,) = load_sessions(str(path))
    rows = [r for r in waterfall(s, source=str(path))["rows"] if r["kind"] == "request"]
    assert [r["usage_unknown"] for r in rows] == [False, True]
    assert rows[1]["cost"] == "-"
    assert ["usage", f"unknown: {unknown['usage_unknown']}"] in rows[1]["attrs"]
    assert not any(k.startswith("gen_ai.usage.") for k, _ in rows[1]["attrs"])
