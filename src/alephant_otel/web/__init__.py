"""The web view: ``alephant-otel ui`` and ``sessions show --html``.

A read-only page over any source the ``sessions`` commands read, built on the
analytics model (:mod:`alephant_otel.analytics`): the session list with the
vitals as charts, and one session as a waterfall of runs and requests.
Nothing here is loaded by ``import alephant_otel``.
"""

from __future__ import annotations

from alephant_otel.web._commands import register_ui, write_html

__all__ = ["register_ui", "write_html"]
