"""Stage 2, wire: the httpx/httpx2 hooks, gateway headers, the gateway matcher, baggage scoping,
aiohttp transports and the body watcher.

May import ``record``, ``context`` and ``redact``; never analytics, the CLI or the web view.
"""
