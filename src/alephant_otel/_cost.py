"""Request cost in USD: the gateway's own figure, else genai-prices.

Prices come from ``genai-prices`` (pydantic's maintained price table); there
is no price table in this package. ``genai_prices.calc_price`` takes about
100 µs per call, too much for every request, so the model lookup and its
unit prices are cached per (provider, model) for an hour, and the common
case (flat per-token prices) is computed from those unit prices with the
same rule genai-prices applies: cached input tokens are part of
``input_tokens`` and billed at the cache price. Tiered or otherwise
conditional prices always go through ``calc_price``.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final

from genai_prices import Usage, calc_price, data_snapshot

from alephant_otel._usage import ParsedResponse

__all__ = ["compute_cost", "gateway_cost"]

_log = logging.getLogger(__name__)
_TTL_S: Final = 3600.0
_MISSING: Final = object()
#: (provider, model) -> (expires_at, flat unit prices per token or None for "use calc_price", or _MISSING)
_cache: dict[tuple[str | None, str], tuple[float, Any]] = {}
_warned: set[str] = set()
_WARN_LIMIT: Final = 256


def gateway_cost(value: str | None) -> float | None:
    """Parse a gateway-reported cost header value; garbage, negative or non-finite -> None."""
    if value is None:
        return None
    try:
        cost = float(value.strip())
    except ValueError:
        return None
    return cost if math.isfinite(cost) and cost >= 0 else None


def _split(model: str, provider: str | None) -> tuple[str | None, str]:
    if "/" in model:
        prefix, name = model.split("/", 1)
        return prefix.lower() or provider, name
    return provider, model


def _flat_prices(provider: str | None, model: str) -> Any:
    """Unit prices (USD per token) when the model's price is flat, None when not, _MISSING if unknown."""
    key = (provider, model)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        snapshot = data_snapshot.get_snapshot()
        _, info = snapshot.find_provider_model(model, None, provider, None)
        mp = info.get_prices(datetime.now(tz=timezone.utc))
        units: dict[str, Decimal] | None = {}
        for field in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"):
            price = getattr(mp, field, None)
            if price is not None and not isinstance(price, Decimal):
                units = None  # tiered: needs the full calculation
                break
            units[field] = (price or Decimal(0)) / Decimal(1_000_000)  # type: ignore[index]
        value: Any = units
    except LookupError:
        value = _MISSING
    if len(_cache) > 4096:
        _cache.clear()
    _cache[key] = (now + _TTL_S, value)
    return value


def _warn_unknown(model: str) -> None:
    if model not in _warned and len(_warned) < _WARN_LIMIT:
        _warned.add(model)
        _log.info("alephant_otel: no price known for model %r; its requests carry no cost", model)


def compute_cost(parsed: ParsedResponse, *, request_model: str | None, provider: str | None) -> float | None:
    """USD cost of one request from its token usage, or None when unknown. Never raises."""
    if parsed.input_tokens is None and parsed.output_tokens is None:
        return None
    for candidate in (parsed.response_model, request_model):
        if not candidate:
            continue
        prov, name = _split(candidate, provider)
        try:
            units = _flat_prices(prov, name)
            if units is _MISSING:
                continue
            inp = parsed.input_tokens or 0
            out = parsed.output_tokens or 0
            read = min(parsed.cache_read_input_tokens or 0, inp)
            write = min(parsed.cache_creation_input_tokens or 0, inp - read)
            if units is not None:
                cost = (
                    (inp - read - write) * units["input_mtok"]
                    + read * (units["cache_read_mtok"] or units["input_mtok"])
                    + write * (units["cache_write_mtok"] or units["input_mtok"])
                    + out * units["output_mtok"]
                )
                return float(cost)
            usage = Usage(
                input_tokens=inp, output_tokens=out, cache_read_tokens=read or None, cache_write_tokens=write or None
            )
            return float(calc_price(usage, name, provider_id=prov).total_price)
        except Exception:
            _log.debug("alephant_otel: pricing %r failed", candidate, exc_info=True)
            continue
    _warn_unknown(parsed.response_model or request_model or "?")
    return None
