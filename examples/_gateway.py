"""Where the examples send their calls: the real gateway or a local emulator.

With ``ALEPHANT_VIRTUAL_KEY`` set, examples call the gateway at
``ALEPHANT_GATEWAY_URL`` (default https://ai.alephant.io) with that key.
Otherwise they start the package's gateway emulator on loopback, so every
example runs on a machine with no key and no network.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from alephant_otel.testing import GatewayEmulator

HEADERS = ("alephant-session-id", "alephant-session-name", "alephant-session-path",
           "Alephant-Agent-Id", "Alephant-Run-Id", "x-request-id")


@dataclass
class Gateway:
    url: str
    api_key: str
    emulator: GatewayEmulator | None

    @property
    def openai_base_url(self) -> str:
        return self.url.rstrip("/") + "/v1"

    def print_received(self) -> None:
        """Print the alephant headers the emulator received (nothing for the real gateway)."""
        if self.emulator is None:
            print("(real gateway: see the session in the Alephant console)")
            return
        for req in self.emulator.requests:
            shown = {h: req.headers.get(h) for h in HEADERS if req.headers.get(h) is not None}
            print(f"gateway received {req.method} {req.path} {shown}")


@contextlib.contextmanager
def gateway() -> Iterator[Gateway]:
    key = os.environ.get("ALEPHANT_VIRTUAL_KEY")
    if key:
        yield Gateway(os.environ.get("ALEPHANT_GATEWAY_URL", "https://ai.alephant.io"), key, None)
        return
    with GatewayEmulator() as emu:
        yield Gateway(emu.url, "sk-local-emulator", emu)
