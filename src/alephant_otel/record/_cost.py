"""Request cost in USD: the gateway's own figure, else a price from genai-prices.

Prices come from ``genai-prices`` (pydantic's maintained price table); this
package keeps no price table and no pricing rules of its own.

``genai_prices.calc_price`` costs about 65 µs per call (nearly all of it in
its unit-decomposition step; the model lookup is cached inside it), too much
for every request. For a price that is linear in the token counts, which is
every price without tiers, the cost is ``base + sum(count * rate)``; the base
and per-token rates are measured *by genai-prices itself* (a few
``calc_price`` calls on unit usages) once per (provider, model) and cached, so
any rule it applies (cached tokens billed at the cache price, a missing cache
price falling back to the input price, per-request fees) is reproduced, not
reimplemented. Tiered prices, which depend on the request size, always go
through ``calc_price``.

Token mapping: genai-prices' ``Usage.input_tokens`` *includes* cache reads
and writes (its own Anthropic extractor adds ``cache_read_input_tokens`` and
``cache_creation_input_tokens`` into ``input_tokens``; its OpenAI one takes
``prompt_tokens``, which already includes ``cached_tokens``).
:class:`~alephant_otel.record._usage.ParsedResponse` already normalises
``input_tokens`` that way for both providers, so it maps across unchanged,
with ``cache_read_input_tokens`` -> ``cache_read_tokens`` and
``cache_creation_input_tokens`` -> ``cache_write_tokens``. Reasoning tokens
are part of ``output_tokens`` in both APIs and are not passed separately.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from alephant_otel._impossible import MAX_COST_USD, warn_impossible
from alephant_otel.record._acc import ParsedResponse

__all__ = ["compute_cost", "gateway_cost", "load_prices"]

_log = logging.getLogger(__name__)

#: Prices can change over time (genai-prices has dated prices): look again hourly.
_TTL_S: Final = 3600.0
_CACHE_LIMIT: Final = 4096
#: At most this many distinct unknown model names are warned about.
_WARN_LIMIT: Final = 256
_MTOK: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class _Linear:
    """A linear price: ``base + inp*input + read*cache_read + write*cache_write + out*output``.

    Floats, not genai-prices' Decimals: Decimal arithmetic was ~5 µs of every
    request, and the exported attribute is a float anyway.
    """

    base: float
    input: float
    cache_read: float
    cache_write: float
    output: float


@dataclass(frozen=True, slots=True)
class _Tiered:
    """A price that depends on request size: computed by ``calc_price`` every time."""

    model_ref: str
    provider_id: str | None


_Entry = _Linear | _Tiered | None
#: (provider, model name as seen) -> (expires at, snapshot, price or None when unknown)
_cache: dict[tuple[str | None, str], tuple[float, object, _Entry]] = {}
_warned: set[str] = set()


@functools.cache
def load_prices() -> Any:
    """Import genai-prices and load its price snapshot (once).

    Importing it (and pydantic with it) takes 100-150 ms: the bridge calls this
    when it is set up, so the first request does not pay it, and code that
    never prices anything (``alephant-otel sessions``, ``import
    alephant_otel``) never does.
    """
    global _snapshot_of  # noqa: PLW0603 - set once, to the same function every time
    import genai_prices
    import genai_prices.types

    _snapshot_of = genai_prices.data_snapshot.get_snapshot
    _snapshot_of()
    return genai_prices


#: genai-prices' snapshot getter, once loaded: each lookup asks it for the current snapshot
#: (an import statement and two attribute reads less than going through the module).
_snapshot_of: Any = None


def gateway_cost(value: str | None) -> float | None:
    """Parse a cost the gateway reported in a response header.

    Args:
        value: The header value, e.g. ``"0.00012"``, or ``None`` when absent.

    Returns:
        The cost in USD, or ``None`` for a missing value, and (with one
        warning) for a negative, non-finite, unparseable or impossible one
        (over ``MAX_COST_USD`` for one request).

    Examples:
        >>> gateway_cost("0.00012")
        0.00012
        >>> gateway_cost("-1") is None, gateway_cost("nan") is None, gateway_cost("$3") is None
        (True, True, True)
    """
    if value is None:
        return None
    try:
        text = value.strip()
        cost = float(text) if 0 < len(text) <= 64 else math.nan
    except (ValueError, TypeError, AttributeError):
        cost = math.nan
    if 0.0 <= cost <= MAX_COST_USD:  # NaN fails both
        return cost
    warn_impossible("cost", cost if math.isfinite(cost) else value)
    return None


def _known_provider(snapshot: Any, provider: str | None) -> str | None:
    if not provider:
        return None
    try:
        found = load_prices().data_snapshot.find_provider_by_id(snapshot.providers, provider)
        return provider if found is not None else None
    except Exception:
        return None


def _attempts(model: str, provider: str | None, snapshot: Any) -> list[tuple[str | None, str]]:
    """(provider_id, model_ref) pairs to try, most specific first."""
    attempts: list[tuple[str | None, str]] = []
    prefix, slash, rest = model.partition("/")
    if slash and rest:
        known = _known_provider(snapshot, prefix.strip().lower())
        if known is not None:
            attempts.append((known, rest))
        else:
            fallback = _known_provider(snapshot, provider)
            if fallback is not None:
                attempts.append((fallback, rest))
            attempts.append((None, rest))
    known = _known_provider(snapshot, provider)
    if known is not None:
        attempts.append((known, model))
    attempts.append((None, model))
    return attempts


def _price_of(provider_id: str | None, model_ref: str, snapshot: Any) -> _Entry:
    """Resolve a model to a cacheable price, or None when genai-prices does not know it."""
    try:
        _, info = snapshot.find_provider_model(model_ref, None, provider_id, None)
    except LookupError:
        return None
    gp = load_prices()
    prices = info.get_prices(datetime.now(tz=UTC))
    if any(isinstance(v, gp.types.TieredPrices) for v in vars(prices).values()):
        return _Tiered(model_ref, provider_id)

    def at(**counts: int) -> Decimal:
        total: Decimal = gp.calc_price(gp.Usage(**counts), model_ref, provider_id=provider_id).total_price
        return total

    base = at()
    return _Linear(
        base=float(base),
        input=float((at(input_tokens=_MTOK) - base) / _MTOK),
        cache_read=float((at(input_tokens=_MTOK, cache_read_tokens=_MTOK) - base) / _MTOK),
        cache_write=float((at(input_tokens=_MTOK, cache_write_tokens=_MTOK) - base) / _MTOK),
        output=float((at(output_tokens=_MTOK) - base) / _MTOK),
    )


def _lookup(model: str, provider: str | None) -> _Entry:
    key = (provider, model)
    now = time.monotonic()
    snapshot = (_snapshot_of or load_prices().data_snapshot.get_snapshot)()
    hit = _cache.get(key)
    # A new snapshot (genai-prices' UpdatePrices) invalidates what was cached.
    if hit is not None and hit[0] > now and hit[1] is snapshot:
        return hit[2]
    entry: _Entry = None
    for provider_id, model_ref in _attempts(model, provider, snapshot):
        entry = _price_of(provider_id, model_ref, snapshot)
        if entry is not None:
            break
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[key] = (now + _TTL_S, snapshot, entry)
    return entry


def _warn_unknown(model: str) -> None:
    if model not in _warned and len(_warned) < _WARN_LIMIT:
        _warned.add(model)
        _log.warning(
            "alephant_otel: genai-prices has no price for model %r; its requests carry no computed cost", model
        )


def compute_cost(parsed: ParsedResponse, request_model: str | None, provider: str | None) -> float | None:
    """USD cost of one request from its token usage. Never raises.

    Args:
        parsed: The parsed response (token counts and response model).
        request_model: The model named in the request, used when the response
            names none or an unpriced one. ``provider/model`` names are split.
        provider: The provider inferred for the request (used when the model
            name has no known provider prefix).

    Returns:
        The cost in USD, or ``None`` when the response has no token counts or
        genai-prices knows neither model.
    """
    try:
        if parsed.input_tokens is None and parsed.output_tokens is None:
            return None
        inp = parsed.input_tokens or 0
        out = parsed.output_tokens or 0
        # Counts come from outside: keep them consistent (cache tokens are part of input).
        # min(), spelled out: a builtin call costs more than the comparison, every request.
        read = parsed.cache_read_input_tokens or 0
        if read > inp:  # noqa: PLR1730
            read = inp
        write = parsed.cache_creation_input_tokens or 0
        if write > inp - read:  # noqa: PLR1730
            write = inp - read
        for candidate in (parsed.response_model, request_model):
            if not candidate:
                continue
            entry = _lookup(candidate, provider)
            if isinstance(entry, _Linear):
                return (
                    entry.base
                    + (inp - read - write) * entry.input
                    + read * entry.cache_read
                    + write * entry.cache_write
                    + out * entry.output
                )
            if isinstance(entry, _Tiered):
                gp = load_prices()
                usage = gp.Usage(
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=read or None,
                    cache_write_tokens=write or None,
                )
                return float(gp.calc_price(usage, entry.model_ref, provider_id=entry.provider_id).total_price)
        _warn_unknown(parsed.response_model or request_model or "?")
        return None
    except Exception:
        _log.debug("alephant_otel: cost computation failed", exc_info=True)
        return None
