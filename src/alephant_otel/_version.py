"""The package version (kept in one place for spans' instrumentation scope)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
