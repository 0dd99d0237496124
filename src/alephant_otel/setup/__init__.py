"""Assembly: ``configure()``, settings and the environment, the distro entry points, exits.

Wires the per-request stages into tracer providers; never imports analytics, the CLI or the web view.
"""
