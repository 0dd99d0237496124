"""The captured conversation, read back: the session page (headless Chromium), ``--html`` and ``--messages``.

A trace file written by real SDK traffic with content capture on; then the real CLI as a subprocess
(``ui``, ``sessions show --html``, ``sessions show --messages``) and the real browser.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from test_ui import UiProcess, browser, browser_needed, cli, page  # noqa: F401 (fixtures)

import alephant_otel
from alephant_otel import run, session
from alephant_otel.testing import GatewayEmulator

TAG = uuid.uuid4().hex[:8]
SYSTEM = f"You answer refund questions SYS{TAG}"
PROMPT = f"Where is my refund for order 42? USR{TAG}"
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
CLAUDE_PROMPT = f"Summarise the case ANT{TAG}"


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("conv") / "traces.jsonl"
    provider = TracerProvider()
    with GatewayEmulator() as gw:
        alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider, trace_file=path, capture_content=True)
        try:
            client = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-test-conv-0000", max_retries=0)
            claude = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-test-conv-0000", max_retries=0)
            with client, claude:
                _traffic(client, claude)
                # Capture off again: this session's page and --messages say so.
                alephant_otel.configure(gateway_url=gw.url, tracer_provider=provider, trace_file=path)
                with session("sess_plain"):
                    client.chat.completions.create(
                        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                    )
            provider.force_flush()
        finally:
            provider.shutdown()
            alephant_otel.configure(gateway_url=gw.url)
    return path


def _traffic(client: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with session("sess_conv", name="Refund case"), run(agent_id="support"):
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{PROMPT} {XSS}"}],
        )
        claude.messages.create(
            model="anthropic/claude-3-5-haiku-latest",
            max_tokens=64,
            messages=[{"role": "user", "content": CLAUDE_PROMPT}],
        )


@browser_needed
def test_the_session_page_shows_the_conversation_collapsed(trace_file: Path, page: Any) -> None:  # noqa: F811
    ui = UiProcess("--source", str(trace_file))
    try:
        page.goto(ui.url + "sessions/sess_conv")
        page.wait_for_selector("body[data-rendered='1']")
        boxes = page.locator("details.conv")
        assert boxes.count() == 2
        assert [boxes.nth(i).get_attribute("open") for i in range(2)] == [None, None]  # collapsed
        # In the DOM without a click (textContent of a closed <details>), and hidden until opened.
        texts = page.locator("details.conv pre.text").all_text_contents()
        assert SYSTEM in texts and f"{PROMPT} {XSS}" in texts and CLAUDE_PROMPT in texts
        assert any(t.startswith("Thanks for asking about " + CLAUDE_PROMPT) for t in texts)
        assert not page.get_by_text(CLAUDE_PROMPT, exact=True).is_visible()
        boxes.nth(1).locator("summary").click()
        assert page.get_by_text(CLAUDE_PROMPT, exact=True).is_visible()
        roles = page.locator("details.conv").first.locator(".role").all_text_contents()
        assert roles == ["system", "user", "assistant"]
        assert page.dialogs == [] and page.errors == []  # the prompt's markup stayed text
    finally:
        ui.stop()


@browser_needed
def test_html_export_carries_the_conversation(trace_file: Path, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    html_file = tmp_path / "session.html"
    out = cli("sessions", "show", "sess_conv", "--source", str(trace_file), "--html", str(html_file))
    assert out.returncode == 0, out.stderr
    context = browser.new_context(offline=True)
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(html_file.as_uri())
        pg.wait_for_selector("#waterfall")
        assert pg.locator("details.conv").count() == 2
        assert SYSTEM in pg.locator("details.conv pre.text").all_text_contents()
        assert errors == []
    finally:
        context.close()


def test_sessions_show_messages_prints_the_conversation(trace_file: Path) -> None:
    out = cli("sessions", "show", "sess_conv", "--source", str(trace_file), "--messages")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"system: {SYSTEM}" in text
    assert f"user: {PROMPT} {XSS}" in text
    assert f"user: {CLAUDE_PROMPT}" in text and f"assistant: Thanks for asking about {CLAUDE_PROMPT}" in text
    assert text.index(SYSTEM) < text.index(CLAUDE_PROMPT)  # requests in the order they ran
    plain = cli("sessions", "show", "sess_plain", "--source", str(trace_file), "--messages")
    assert plain.returncode == 0 and "content capture is off by default" in plain.stdout
    assert "user:" not in plain.stdout
    without = cli("sessions", "show", "sess_conv", "--source", str(trace_file))
    assert PROMPT not in without.stdout  # only when asked for


def test_show_json_is_unchanged_by_capture(trace_file: Path) -> None:
    out = cli("sessions", "show", "sess_conv", "--source", str(trace_file), "--json")
    assert out.returncode == 0 and PROMPT not in out.stdout
