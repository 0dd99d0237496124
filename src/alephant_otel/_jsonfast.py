"""orjson's decoder when it is installed (the ``[fast]`` extra), for the modules that decode a lot of JSON."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["orjson_loads"]


def orjson_loads() -> Callable[[bytes], Any] | None:
    """``orjson.loads``, or None when orjson is not installed (callers fall back to ``json``)."""
    try:
        loads: Callable[[bytes], Any] = importlib.import_module("orjson").loads
    except ImportError:
        return None
    return loads
