"""What a secret looks like and how it is cut out: pure rules, imported by every stage.

Standard library only. Imports nothing else from the package but its face (``_names``).
"""
