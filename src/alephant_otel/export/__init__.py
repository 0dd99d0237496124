"""Stage 4, export: the export-time scrubbing step, the trace file writer and its exporter.

May import ``record``, ``context`` and ``redact``; never the wire, analytics, the CLI or the web view.
"""
