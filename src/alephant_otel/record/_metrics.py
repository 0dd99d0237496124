"""GenAI client metrics, dimensioned by low-cardinality attributes only.

Session and run ids are never metric dimensions: they are unbounded, and a
metrics backend keeps one series per distinct attribute set. The dimension
values that come from the application or the gateway (agent id, session path,
models, an error type) are scrubbed like span attributes, once per distinct
set: metrics leave the process through their own exporters, which the span
scrubber does not see.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from opentelemetry.metrics import MeterProvider, NoOpCounter, get_meter
from opentelemetry.util.types import AttributeValue

from alephant_otel import _fastpaths
from alephant_otel import _names as n
from alephant_otel._version import __version__
from alephant_otel.redact._scrub import scrub_text

__all__ = ["Instruments"]

# GenAI semconv advisory buckets.
_TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
_DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


#: The metric dimensions, in the order of Instruments.record's parameters.
_DIMENSIONS: Final = (
    n.GEN_AI_OPERATION_NAME,
    n.GEN_AI_PROVIDER_NAME,
    n.GEN_AI_REQUEST_MODEL,
    n.GEN_AI_RESPONSE_MODEL,
    n.ATTR_AGENT_ID,
    n.ATTR_SESSION_PATH,
)
_SETS_KEEP: Final = 256
#: (attributes, with token type "input", with token type "output")
_AttributeSets = tuple[dict[str, AttributeValue], dict[str, AttributeValue], dict[str, AttributeValue]]


class Instruments:
    """The meters one bridge records to."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = get_meter(n.INSTRUMENTATION_NAME, __version__, meter_provider)
        self.token_usage = meter.create_histogram(
            n.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used per GenAI operation through the gateway.",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )
        self.duration = meter.create_histogram(
            n.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of GenAI operations through the gateway, to the end of the response body.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.cost = meter.create_counter(
            n.METRIC_COST, unit="USD", description="Cost of gateway requests in US dollars."
        )
        #: The global provider's proxy while no meter provider is set (nothing to record to yet),
        #: or None; and whether the instruments are no-ops. The caller skips the call then.
        self.proxy = _proxy_of(self.cost)
        self.noop = isinstance(self.cost, NoOpCounter)

    def record(
        self,
        operation: str | None,
        provider: str | None,
        request_model: str | None,
        response_model: str | None,
        agent_id: str | None,
        session_path: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: float | None,
        duration_s: float,
        error_type: str | None,
    ) -> None:
        """Record one finished request.

        The GenAI histograms get only GenAI operations: the semantic conventions
        require ``gen_ai.operation.name`` on them, and a model list or a token
        count is a gateway request but no model call. The cost counter gets any
        request that cost something.
        """
        attrs, input_attrs, output_attrs = _attribute_sets(
            operation, provider, request_model, response_model, agent_id, session_path
        )
        if cost_usd is not None:
            self.cost.add(cost_usd, attrs)
        if operation is None:
            return
        if error_type is not None:
            self.duration.record(duration_s, {**attrs, "error.type": _error_type(error_type)})
        else:
            self.duration.record(duration_s, attrs)
        if input_tokens is not None:
            self.token_usage.record(input_tokens, input_attrs)
        if output_tokens is not None:
            self.token_usage.record(output_tokens, output_attrs)


def _proxy_of(instrument: Any) -> Any:
    """``instrument`` when it is the API's proxy counter with its ``_real_instrument`` slot, else None.

    The slot is private: read only with the fast paths on, for the class it was seen on.
    The API fills it when a meter provider is set, for all of a meter's instruments at once.
    """
    if (
        _fastpaths.ENABLED
        and type(instrument).__name__ == "_ProxyCounter"
        and getattr(instrument, "_real_instrument", _MISSING) is None
    ):
        return instrument
    return None


_MISSING: Final = object()


@functools.lru_cache(maxsize=_SETS_KEEP)
def _attribute_sets(*dimensions: str | None) -> _AttributeSets:
    """The attribute dicts of one combination of dimensions, built once and kept.

    The dimensions are low-cardinality by design (no session or run ids), so
    requests repeat a few combinations; the dicts are only ever read. Scrubbed
    here, so once per combination, never per request (``scrub_patterns`` given
    to a later ``configure()`` apply to the combinations first seen after it).
    """
    attrs: dict[str, AttributeValue] = {
        name: scrub_text(value) for name, value in zip(_DIMENSIONS, dimensions, strict=True) if value is not None
    }
    return attrs, {**attrs, n.GEN_AI_TOKEN_TYPE: "input"}, {**attrs, n.GEN_AI_TOKEN_TYPE: "output"}


#: An error type is a status code or a word from the gateway's error body: few distinct ones.
_error_type = functools.lru_cache(maxsize=64)(scrub_text)
