"""Test helpers: a gateway emulator and an OTLP receiver on loopback, and a pytest fixture.

Nothing here is imported by ``import alephant_otel``. The pytest plugin
(``alephant_gateway`` fixture) is registered through the ``pytest11`` entry
point and lives in :mod:`alephant_otel.testing._plugin`.
"""

from __future__ import annotations

from alephant_otel.testing._emulator import Fault, GatewayEmulator, RecordedRequest
from alephant_otel.testing._receiver import OtlpReceiver, ReceivedSpan

__all__ = ["Fault", "GatewayEmulator", "OtlpReceiver", "ReceivedSpan", "RecordedRequest"]
