"""Vitals: where the money went and which sessions look wrong.

Outliers are flagged against the sessions read, not fixed thresholds:

- ``high_latency``: the session's p95 request latency is more than
  ``latency_factor`` times the median p95 of the *other* sessions with
  requests (needs ``min_peers`` of them);
- ``repeated_retries``: ``retry_threshold`` or more retried attempts;
- ``token_outlier``: more than ``token_factor`` times the median tokens of
  the other sessions on the same path (needs ``min_peers`` such sessions);
- ``intercepted``: any request the gateway intercepted (a policy event);
- ``errors``: any request that failed for another reason (printed as "failed").

A request the gateway intercepts ends with status ERROR too, so the
``errors`` counts (JSON ``errors``) include interceptions; ``failed`` counts
the requests that ended in error without being intercepted. The text output
says "failed" and "intercepted", which add up to the errors.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from alephant_otel.analytics._model import Request, Session

__all__ = [
    "Flag",
    "GroupVitals",
    "SessionVitals",
    "Vitals",
    "VitalsConfig",
    "assemble_vitals",
    "compute_vitals",
    "failed_requests",
    "percentile",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _seconds(value: float) -> str:
    """A latency with three significant digits: 0.06 s and 0.064 s must not read the same."""
    return f"{value:.3g}s"


def _median_without(ordered: Sequence[float], value: float) -> float:
    """The median of sorted ``ordered`` with one occurrence of ``value`` left out."""
    skip = bisect.bisect_left(ordered, value)

    def at(k: int) -> float:
        return ordered[k] if k < skip else ordered[k + 1]

    m = len(ordered) - 1
    return float(at(m // 2)) if m % 2 else (at(m // 2 - 1) + at(m // 2)) / 2


@dataclass(frozen=True, slots=True)
class VitalsConfig:
    """Thresholds for the outlier flags."""

    min_peers: int = 3
    latency_factor: float = 1.5
    retry_threshold: int = 2
    token_factor: float = 3.0


@dataclass(frozen=True, slots=True)
class Flag:
    """One reason a session stands out."""

    kind: str
    detail: str


@dataclass(slots=True)
class SessionVitals:
    """Per-session measures and flags."""

    session: Session
    latency_p50_s: float
    latency_p95_s: float
    latency_max_s: float
    flags: list[Flag] = field(default_factory=list)


@dataclass(slots=True)
class GroupVitals:
    """Totals for one agent or one path."""

    key: str
    sessions: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    retries: int = 0
    intercepted: int = 0
    errors: int = 0


@dataclass(slots=True)
class Vitals:
    """What ``sessions vitals`` reports."""

    sessions: list[SessionVitals]
    by_status: dict[str, int]
    by_agent: list[GroupVitals]
    by_path: list[GroupVitals]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    requests: int
    retries: int
    errors: int
    intercepted: int
    latency_p50_s: float
    latency_p95_s: float
    #: ``latency_factor`` times the median session p95 (each session is judged against the
    #: median of the others); None with fewer than ``min_peers`` + 1 sessions with requests.
    latency_threshold_s: float | None
    #: Requests that ended in error without being intercepted (``errors`` counts both).
    failed: int = 0
    #: Breakdowns a summary source computed itself (``--by model``), by dimension.
    groups: dict[str, list[GroupVitals]] = field(default_factory=dict)

    @property
    def flagged(self) -> list[SessionVitals]:
        """Sessions with at least one flag."""
        return [v for v in self.sessions if v.flags]


def _order(g: GroupVitals) -> tuple[float, int, str]:
    return (-g.cost_usd, -(g.input_tokens + g.output_tokens), g.key)


def per_session(sessions: Iterable[Session], key_of: Callable[[Session], str | None]) -> list[GroupVitals]:
    """Sessions grouped by ``key_of`` (``(none)`` when it gives nothing), costliest first."""
    groups: dict[str, GroupVitals] = {}
    for s in sessions:
        key = key_of(s) or "(none)"
        g = groups.get(key)
        if g is None:
            g = groups[key] = GroupVitals(key)
        g.sessions += 1
        g.requests += s.request_count
        g.cost_usd += s.cost_usd
        g.input_tokens += s.input_tokens
        g.output_tokens += s.output_tokens
        g.retries += s.retries
        g.intercepted += s.intercepted
        g.errors += s.errors
    return sorted(groups.values(), key=_order)


def per_request(sessions: Iterable[Session], key_of: Callable[[Request], str | None]) -> dict[str, GroupVitals]:
    """Requests grouped by ``key_of``; a group's ``sessions`` counts the sessions it has requests in."""
    groups: dict[str, GroupVitals] = {}
    for s in sessions:
        seen: set[str] = set()
        for req in s.requests:
            key = key_of(req) or "(none)"
            g = groups.get(key)
            if g is None:
                g = groups[key] = GroupVitals(key)
            if key not in seen:
                seen.add(key)
                g.sessions += 1
            g.requests += 1
            g.cost_usd += req.cost_usd
            g.input_tokens += req.input_tokens
            g.output_tokens += req.output_tokens
            g.retries += req.retried
            g.intercepted += req.intercepted
            g.errors += req.error
    return groups


def _paths(sessions: Iterable[Session]) -> list[GroupVitals]:
    return per_session(sessions, lambda s: s.path)


def _groups(sessions: Iterable[Session]) -> tuple[list[GroupVitals], list[GroupVitals]]:
    sessions = list(sessions)
    agents = per_request(sessions, lambda r: r.agent_id)
    for s in sessions:
        with_requests = {r.agent_id or "(none)" for r in s.requests}
        for step in s.tools:  # a paid tool's cost is its agent's too: the groups add up to the total
            key = step.agent_id or "(none)"
            ag = agents.setdefault(key, GroupVitals(key))
            if key not in with_requests:
                with_requests.add(key)
                ag.sessions += 1
            ag.cost_usd += step.cost_usd
    return sorted(agents.values(), key=_order), _paths(sessions)


def compute_vitals(sessions: Sequence[Session], config: VitalsConfig | None = None) -> Vitals:
    """Totals, per-agent and per-path costs, and outlier flags for ``sessions``."""
    stats: list[tuple[float, float, float, bool]] = []
    all_latencies: list[float] = []
    for s in sessions:
        lat = [r.latency_s for r in s.requests]
        all_latencies.extend(lat)
        stats.append((percentile(lat, 50), percentile(lat, 95), max(lat, default=0.0), bool(s.requests)))
    reasons = [sorted({e.reason for e in s.policy_events if e.reason}) for s in sessions]
    failed = [failed_requests(s) for s in sessions]
    by_agent = _groups(sessions)[0]
    return assemble_vitals(
        sessions,
        stats,
        reasons,
        failed,
        by_agent,
        percentile(all_latencies, 50),
        percentile(all_latencies, 95),
        config,
    )


def assemble_vitals(
    sessions: Sequence[Session],
    stats: Sequence[tuple[float, float, float, bool]],
    reasons: Sequence[list[str]],
    failed: Sequence[int],
    by_agent: list[GroupVitals],
    latency_p50_s: float,
    latency_p95_s: float,
    config: VitalsConfig | None = None,
) -> Vitals:
    """The vitals of ``sessions`` from figures computed elsewhere (from their requests, or in a server).

    Args:
        sessions: The sessions (their totals, paths and statuses are read).
        stats: Per session: request latency p50, p95, max (seconds), and whether it has requests.
        reasons: Per session: its distinct policy reasons, sorted.
        failed: Per session: requests that ended in error without being intercepted.
        by_agent: The per-agent groups, in any order.
        latency_p50_s: The p50 of every request's latency.
        latency_p95_s: The p95 of every request's latency.
        config: Thresholds.
    """
    cfg = config or VitalsConfig()
    rows = [SessionVitals(s, p50, p95, mx) for s, (p50, p95, mx, _) in zip(sessions, stats, strict=True)]
    # A session is slow against the others, never against a figure it helped make: with the
    # 95th percentile of all sessions as the bar, the slowest of three always stood out.
    p95s = sorted(v.latency_p95_s for v, st in zip(rows, stats, strict=True) if st[3])
    # What the output shows as the bar: the factor times the median of every session's p95.
    threshold = cfg.latency_factor * percentile(p95s, 50) if len(p95s) - 1 >= cfg.min_peers else None
    # Per path, every session's tokens, sorted: the median of a session's peers is read from it
    # by index (one sort per path instead of one per session: 10,000 sessions took 30 s).
    tokens_by_path: dict[str | None, list[int]] = {}
    for s in sessions:
        tokens_by_path.setdefault(s.path, []).append(s.tokens)
    for values in tokens_by_path.values():
        values.sort()

    for v, st, why, bad in zip(rows, stats, reasons, failed, strict=True):
        s = v.session
        if st[3] and len(p95s) - 1 >= cfg.min_peers:
            typical = _median_without(p95s, v.latency_p95_s)
            if typical > 0 and v.latency_p95_s > cfg.latency_factor * typical:
                v.flags.append(
                    Flag(
                        "high_latency",
                        f"p95 {_seconds(v.latency_p95_s)} = {v.latency_p95_s / typical:.1f}x the median "
                        f"({_seconds(typical)}) of {len(p95s) - 1} other sessions",
                    )
                )
        if s.retries >= cfg.retry_threshold:
            v.flags.append(Flag("repeated_retries", f"{s.retries} retried attempts"))
        path_tokens = tokens_by_path.get(s.path, [])
        peers = len(path_tokens) - 1
        if peers >= cfg.min_peers:
            median = _median_without(path_tokens, s.tokens)
            if median > 0 and s.tokens > cfg.token_factor * median:
                v.flags.append(
                    Flag(
                        "token_outlier",
                        f"{s.tokens} tokens = {s.tokens / median:.1f}x the median of {peers} sessions "
                        f"on {s.path or '(no path)'}",
                    )
                )
        if s.intercepted:
            v.flags.append(Flag("intercepted", f"{_requests(s.intercepted)} ({'; '.join(why) or 'policy'})"))
        if bad:
            v.flags.append(Flag("errors", f"{_requests(bad)} ended in error (not intercepted)"))

    by_status: dict[str, int] = {"active": 0, "completed": 0, "intercepted": 0}
    for s in sessions:
        by_status[s.status] = by_status.get(s.status, 0) + 1
    return Vitals(
        sessions=rows,
        by_status=by_status,
        by_agent=sorted(by_agent, key=_order),
        by_path=_paths(sessions),
        cost_usd=sum(s.cost_usd for s in sessions),
        input_tokens=sum(s.input_tokens for s in sessions),
        output_tokens=sum(s.output_tokens for s in sessions),
        requests=sum(s.request_count for s in sessions),
        retries=sum(s.retries for s in sessions),
        errors=sum(s.errors for s in sessions),
        intercepted=sum(s.intercepted for s in sessions),
        latency_p50_s=latency_p50_s,
        latency_p95_s=latency_p95_s,
        latency_threshold_s=threshold,
        failed=sum(failed),
    )


def failed_requests(s: Session) -> int:
    """Requests of ``s`` that ended in error without being intercepted by the gateway."""
    return sum(1 for r in s.requests if r.error and not r.intercepted)


def _requests(count: int) -> str:
    return "1 request" if count == 1 else f"{count} requests"
