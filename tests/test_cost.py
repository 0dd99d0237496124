"""Cost: equal to genai-prices' own calculation, provider/model names split, unknown models quiet."""

from __future__ import annotations

import logging
import math

import pytest
from genai_prices import Usage, calc_price

from alephant_otel.record._acc import ParsedResponse
from alephant_otel.record._cost import compute_cost, gateway_cost


def reference(model: str, provider: str, inp: int, out: int, read: int = 0, write: int = 0) -> float:
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read or None,
                  cache_write_tokens=write or None)
    return float(calc_price(usage, model, provider_id=provider).total_price)


@pytest.mark.parametrize(("response_model", "request_model", "provider", "ref_model", "ref_provider"), [
    ("gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", "openai"),
    (None, "openai/gpt-4o-mini", "openai", "gpt-4o-mini", "openai"),
    ("claude-3-5-haiku-20241022", "anthropic/claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-20241022",
     "anthropic"),
    (None, "anthropic/claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest", "anthropic"),
    # Tiered prices (by prompt size) go through calc_price itself.
    ("claude-sonnet-4-5", None, "anthropic", "claude-sonnet-4-5", "anthropic"),
    ("gemini-2.5-pro", None, "google", "gemini-2.5-pro", "google"),
])
@pytest.mark.parametrize(("inp", "out", "read", "write"), [
    (1000, 200, 0, 0), (5000, 10, 4096, 0), (3000, 50, 1000, 1500), (0, 0, 0, 0), (300_000, 1, 0, 0),
])
def test_cost_equals_genai_prices(response_model: str | None, request_model: str, provider: str, ref_model: str,
                                  ref_provider: str, inp: int, out: int, read: int, write: int) -> None:
    parsed = ParsedResponse(response_model=response_model, input_tokens=inp, output_tokens=out,
                            cache_read_input_tokens=read or None, cache_creation_input_tokens=write or None)
    got = compute_cost(parsed, request_model=request_model, provider=provider)
    assert got is not None
    assert got == pytest.approx(reference(ref_model, ref_provider, inp, out, read, write), rel=1e-12, abs=1e-15)


def test_cached_tokens_are_cheaper_than_fresh_ones() -> None:
    fresh = compute_cost(ParsedResponse(input_tokens=10_000, output_tokens=0), request_model="openai/gpt-4o",
                         provider="openai")
    cached = compute_cost(ParsedResponse(input_tokens=10_000, output_tokens=0, cache_read_input_tokens=8_000),
                          request_model="openai/gpt-4o", provider="openai")
    assert fresh is not None
    assert cached is not None
    assert 0 < cached < fresh


def test_provider_model_split_and_fallbacks() -> None:
    parsed = ParsedResponse(input_tokens=1000, output_tokens=100)
    expected = reference("gpt-4o-mini", "openai", 1000, 100)
    assert compute_cost(parsed, request_model="openai/gpt-4o-mini", provider=None) == pytest.approx(expected)
    # Unknown prefix: the provider argument, then genai-prices' own matching.
    assert compute_cost(parsed, request_model="my-team/gpt-4o-mini", provider="openai") == pytest.approx(expected)
    # The response model wins; an unpriced one falls back to the request model.
    named = ParsedResponse(response_model="gpt-4o", input_tokens=1000, output_tokens=100)
    assert compute_cost(named, request_model="openai/gpt-4o-mini", provider="openai") == pytest.approx(
        reference("gpt-4o", "openai", 1000, 100))
    unknown = ParsedResponse(response_model="ft:custom-thing-xyz", input_tokens=1000, output_tokens=100)
    assert compute_cost(unknown, request_model="openai/gpt-4o-mini", provider="openai") == pytest.approx(expected)


def test_inconsistent_cache_counts_are_clamped() -> None:
    parsed = ParsedResponse(input_tokens=100, output_tokens=10, cache_read_input_tokens=500,
                            cache_creation_input_tokens=500)
    got = compute_cost(parsed, request_model="anthropic/claude-3-5-haiku-latest", provider="anthropic")
    assert got == pytest.approx(reference("claude-3-5-haiku-latest", "anthropic", 100, 10, read=100))


def test_no_usage_or_unknown_model_gives_none_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert compute_cost(ParsedResponse(), request_model="openai/gpt-4o-mini", provider="openai") is None
    parsed = ParsedResponse(input_tokens=10, output_tokens=10)
    with caplog.at_level(logging.DEBUG, logger="alephant_otel.record._cost"):
        for _ in range(50):
            assert compute_cost(parsed, request_model="nobody/model-that-does-not-exist-1", provider="nobody") is None
        assert compute_cost(parsed, request_model=None, provider=None) is None
    named = [r for r in caplog.records if "model-that-does-not-exist-1" in r.getMessage()]
    assert len(named) == 1
    assert named[0].levelno == logging.WARNING


def test_warnings_for_unknown_models_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    parsed = ParsedResponse(input_tokens=1, output_tokens=1)
    with caplog.at_level(logging.WARNING, logger="alephant_otel.record._cost"):
        for i in range(600):
            compute_cost(parsed, request_model=f"nobody/unknown-bounded-{i}", provider=None)
    assert 0 < len(caplog.records) <= 256


def test_a_linear_price_is_looked_up_once_then_served_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # calc_price costs ~65 µs a call (benchmarks/); a cached linear price is four multiplications.
    import genai_prices

    from alephant_otel.record import _cost

    calls: list[str] = []

    def counting(usage: Usage, model_ref: str, **kwargs: object) -> object:
        calls.append(model_ref)
        return calc_price(usage, model_ref, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(genai_prices, "calc_price", counting)
    monkeypatch.setattr(_cost, "_cache", {})
    parsed = ParsedResponse(response_model="gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=100,
                            cache_read_input_tokens=200)
    first = compute_cost(parsed, request_model="openai/gpt-4o-mini", provider="openai")
    assert calls, "the first lookup derives the price through calc_price"
    derived = len(calls)
    again = [compute_cost(parsed, request_model="openai/gpt-4o-mini", provider="openai") for _ in range(100)]
    assert len(calls) == derived
    assert again == [first] * 100
    assert first == pytest.approx(reference("gpt-4o-mini-2024-07-18", "openai", 1000, 100, read=200))


@pytest.mark.parametrize(("value", "expected"), [
    ("0.00012", 0.00012), (" 1.5 ", 1.5), ("0", 0.0), ("3e-5", 3e-5),
    (None, None), ("", None), ("-0.1", None), ("nan", None), ("NaN", None), ("inf", None), ("-inf", None),
    ("1e999", None), ("$0.01", None), ("0.01 USD", None), ("0x10", None), ("1" * 100, None),
])
def test_gateway_cost(value: str | None, expected: float | None) -> None:
    got = gateway_cost(value)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert math.isclose(got, expected)
