"""Stage 3, record: GenAI bodies parsed (decoding, SSE framing, usage), cost, span attributes,
the span processor and metrics.

May import ``context`` and ``redact``; never the wire, export, analytics, the CLI or the web view.
"""
