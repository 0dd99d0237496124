"""Stage 1, context: session/run/tool scopes, ids, value rules, baggage, carrying context.

May import the face and ``redact``; never the wire, the record, export or anything above.
"""
