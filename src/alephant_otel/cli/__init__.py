"""The ``alephant-otel`` command: one module per command, the demo and the table layout.

The top of the graph: may import anything; nothing in the package imports it.
"""
