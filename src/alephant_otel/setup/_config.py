"""Settings from arguments and the environment, validated with clear messages.

Arguments to ``configure()`` are the user's own input: a bad one raises
``ValueError``. The environment is configuration from outside the program: a
bad value there logs one error and falls back to the default, because a
typo in a deployment variable must never stop the application.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from alephant_otel import _names as n
from alephant_otel.record._contentcap import Capture, resolve_capture
from alephant_otel.redact._scrub import check_patterns
from alephant_otel.wire._gateway import parse_gateway_urls

__all__ = ["Settings", "resolve_settings"]

_log = logging.getLogger(__name__)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of the bridge."""

    gateway_urls: tuple[str, ...] = (n.DEFAULT_GATEWAY_URL,)
    trace_file: Path | None = None
    cost_header: str = n.DEFAULT_COST_HEADER
    #: None: OTel's default baggage propagation; a set: alephant baggage only to these hosts.
    baggage_hosts: frozenset[str] | None = None
    #: More credential name patterns to scrub (``ALEPHANT_SCRUB_PATTERNS`` adds its own where used).
    scrub_patterns: tuple[str, ...] = ()
    #: Flush the spans before a SIGTERM with the default handler ends the process (see ``_exits``).
    sigterm_flush: bool = True
    #: OpenAI Agents SDK agent spans become runs (``integrations``).
    agents_integration: bool = True
    #: Content capture (``_contentcap``): None is off, the default.
    capture: Capture | None = None


def _env_gateway(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get(n.ENV_GATEWAY_URL, "").strip()
    if not raw:
        return (n.DEFAULT_GATEWAY_URL,)
    try:
        return parse_gateway_urls(raw)
    except ValueError as exc:
        _log.error("ignoring %s: %s; using the default %s", n.ENV_GATEWAY_URL, exc, n.DEFAULT_GATEWAY_URL)
        return (n.DEFAULT_GATEWAY_URL,)


def _env_hosts(env: Mapping[str, str]) -> frozenset[str] | None:
    raw = env.get(n.ENV_SCOPE_BAGGAGE, "").strip()
    if raw.lower() in _FALSE:
        return None
    if raw.lower() in _TRUE:
        return frozenset()
    # Otherwise: a comma-separated list of internal hosts that may receive alephant baggage.
    return frozenset(h.strip() for h in raw.split(",") if h.strip())


def env_sigterm_flush(env: Mapping[str, str]) -> bool:
    """``ALEPHANT_SIGTERM_FLUSH``: on unless it says false (an unreadable value logs and keeps it on)."""
    raw = env.get(n.ENV_SIGTERM_FLUSH, "").strip().lower()
    if raw in _TRUE or not raw:
        return True
    if raw in _FALSE:
        return False
    _log.error("ignoring %s=%r: expected true or false; flushing at SIGTERM stays on", n.ENV_SIGTERM_FLUSH, raw)
    return True


def env_switch(env: Mapping[str, str], name: str, what: str) -> bool:
    """An on/off variable that defaults to on (an unreadable value logs and keeps it on)."""
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE or not raw:
        return True
    if raw in _FALSE:
        return False
    _log.error("ignoring %s=%r: expected true or false; %s stays on", name, raw, what)
    return True


def resolve_settings(
    *,
    gateway_url: str | Iterable[str] | None = None,
    trace_file: str | os.PathLike[str] | None = None,
    cost_header: str | None = None,
    baggage_hosts: Iterable[str] | None = None,
    scrub_patterns: Iterable[str] | None = None,
    sigterm_flush: bool | None = None,
    agents_integration: bool | None = None,
    capture_content: bool | str | None = None,
    content_message_limit: int | None = None,
    content_span_limit: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge arguments over the environment.

    Raises:
        ValueError: An argument is invalid (the environment never raises).
    """
    env = os.environ if env is None else env
    urls = parse_gateway_urls(gateway_url) if gateway_url is not None else _env_gateway(env)
    if trace_file is not None:
        path: Path | None = Path(trace_file)
        if str(trace_file).strip() == "":
            raise ValueError("trace_file must be a non-empty path")
    else:
        raw = env.get(n.ENV_TRACE_FILE, "").strip()
        path = Path(raw).expanduser() if raw else None
    if cost_header is not None:
        if not cost_header.strip() or any(c in cost_header for c in " \r\n\t:"):
            raise ValueError(f"cost_header {cost_header!r} is not a valid HTTP header name")
        header = cost_header.strip().lower()
    else:
        header = env.get(n.ENV_COST_HEADER, "").strip().lower() or n.DEFAULT_COST_HEADER
    # Entries are normalised (case, IDN, brackets) where they are matched: _scoping.host_key.
    hosts = frozenset(baggage_hosts) if baggage_hosts is not None else _env_hosts(env)
    patterns = check_patterns(scrub_patterns) if scrub_patterns is not None else ()
    if sigterm_flush is not None and not isinstance(sigterm_flush, bool):
        raise ValueError(f"sigterm_flush must be True or False, not {sigterm_flush!r}")
    flush = sigterm_flush if sigterm_flush is not None else env_sigterm_flush(env)
    if agents_integration is not None and not isinstance(agents_integration, bool):
        raise ValueError(f"agents_integration must be True or False, not {agents_integration!r}")
    agents = (
        agents_integration
        if agents_integration is not None
        else env_switch(env, n.ENV_AGENTS_INTEGRATION, "the Agents SDK integration")
    )
    capture = resolve_capture(capture_content, content_message_limit, content_span_limit, env)
    return Settings(
        capture=capture,
        gateway_urls=urls,
        trace_file=path,
        cost_header=header,
        baggage_hosts=hosts,
        scrub_patterns=patterns,
        sigterm_flush=flush,
        agents_integration=agents,
    )
