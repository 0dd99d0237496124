"""What the web pages show, computed from the analytics model (never from spans).

:func:`waterfall` turns one :class:`Session` into the JSON document the
waterfall script draws (the server page and the ``--html`` export both use
it); :func:`list_rows` and :class:`ListQuery` are the session list with its
filters, sort and paging. Values here are plain data: escaping is the
templates' job (``html.escape``) and the script's (``textContent``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

from alephant_otel import _names as n
from alephant_otel.analytics import STATUSES, Request, Run, Session, filter_sessions, parse_time, sort_sessions
from alephant_otel.analytics._breakdown import check_dimension
from alephant_otel.analytics._conversation import conversation
from alephant_otel.analytics._model import USAGE_UNKNOWN_REASON

# The CLI's own formatting: the page and the terminal print the same figures.
from alephant_otel.analytics._render import MAX_INDENT, duration, money, when
from alephant_otel.analytics._report import session_notes
from alephant_otel.analytics._toolstep import ToolStep
from alephant_otel.redact._scrub import scrub_text

__all__ = ["PAGE_SIZE", "ListQuery", "TraceLinks", "duration", "list_row", "money", "waterfall", "when"]

PAGE_SIZE: Final = 50
_MAX_PAGE_SIZE: Final = 500
SORTS: Final = ("started", "cost", "tokens", "latency", "requests", "session", "path", "status")


# --- trace links -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceLinks:
    """Where a request's trace can be opened: the Jaeger UI, or Tempo's trace API."""

    kind: str
    base: str

    def url(self, trace_id: str) -> str:
        """The URL of one trace in the backend."""
        if self.kind == "jaeger":
            return f"{self.base}/trace/{quote(trace_id, safe='')}"
        return f"{self.base}/api/traces/{quote(trace_id, safe='')}"


# --- one session -----------------------------------------------------------------


def _attrs(r: Request, session: Session) -> list[list[Any]]:
    """The request's attributes under their span names, as export wrote them (URLs redacted)."""
    pairs: list[tuple[str, Any]] = [
        # Not span attributes: where the request sits on the session's time axis.
        ("start", f"+{duration(max(0, r.start_ns - session.start_ns) / 1e9)} after the session started"),
        ("duration", duration(r.latency_s)),
        (n.ATTR_REQUEST_ID, r.request_id),
        (n.ATTR_SESSION_ID, session.session_id),
        (n.ATTR_SESSION_PATH, r.session_path),
        (n.ATTR_AGENT_ID, r.agent_id),
        (n.ATTR_RUN_ID, r.run_id),
        (n.ATTR_RUN_PARENT_ID, r.run_parent_id),
        (n.GEN_AI_OPERATION_NAME, r.operation),
        (n.GEN_AI_PROVIDER_NAME, r.provider),
        (n.GEN_AI_REQUEST_MODEL, r.request_model),
        (n.GEN_AI_RESPONSE_MODEL, r.response_model),
        ("usage", "unknown: " + USAGE_UNKNOWN_REASON if r.usage_unknown else None),
        (n.GEN_AI_USAGE_INPUT_TOKENS, None if r.usage_unknown else r.input_tokens),
        (n.GEN_AI_USAGE_OUTPUT_TOKENS, None if r.usage_unknown else r.output_tokens),
        (n.ATTR_COST_USD, None if r.usage_unknown else r.cost_usd),
        (n.ATTR_COST_SOURCE, r.cost_source),
        (n.ATTR_RETRY_ATTEMPT, r.retry_attempt or None),
        (n.ATTR_STREAMING, r.streaming or None),
        (n.ATTR_INTERCEPTED, r.intercepted or None),
        (n.ATTR_BODY_INCOMPLETE, r.incomplete or None),
        ("http.response.status_code", r.http_status),
        ("otel.status_code", "ERROR" if r.error else None),
        ("otel.status_description", r.status_message or None),
        (n.ATTR_ERROR_TYPE, r.error_type),
        ("trace_id", r.trace_id),
        ("span_id", r.span_id),
        ("parent_span_id", r.parent_span_id),
    ]
    for e in r.policy_events:
        pairs.append((n.EVENT_POLICY, f"reason={e.reason} code={e.code} status={e.status}"))
    return [[k, scrub_text(v) if isinstance(v, str) else v] for k, v in pairs if v is not None]


def _steps(runs: list[Run], requests: list[Request], tools: list[ToolStep]) -> Iterator[Run | Request | ToolStep]:
    # Runs, requests and tool calls interleaved in start order, as `sessions show` prints them.
    steps: list[tuple[int, int, Run | Request | ToolStep]] = [(r.start_ns, 0, r) for r in runs]
    steps += [(r.start_ns, 1, r) for r in requests]
    steps += [(t.start_ns, 2, t) for t in tools]
    for _, _, step in sorted(steps, key=lambda t: (t[0], t[1])):
        yield step


def _tool_row(t: ToolStep, s: Session, depth: int, t0: int) -> dict[str, Any]:
    total = s.cost_usd
    return {
        "kind": "tool",
        "depth": depth,
        "indent": min(depth, MAX_INDENT),
        "deep": depth >= MAX_INDENT,
        "start_ms": (t.start_ns - t0) / 1e6,
        "dur_ms": max(0, t.end_ns - t.start_ns) / 1e6,
        "span_id": t.span_id,
        "name": t.name,
        "call_id": t.call_id,
        "agent": t.agent_id,
        "cost": money(t.cost_usd),
        "cost_usd": t.cost_usd,
        "share": t.cost_usd / total if total > 0 else 0.0,
        "latency": duration(t.latency_s),
        "error": t.error,
        "status_message": scrub_text(t.status_message),
    }


def _row(step: Request | ToolStep, s: Session, depth: int, t0: int, links: TraceLinks | None) -> dict[str, Any]:
    if isinstance(step, ToolStep):
        return _tool_row(step, s, depth, t0)
    return _request_row(step, s, depth, t0, links)


def conversation_rows(r: Request) -> list[dict[str, Any]]:
    """The request's captured conversation for the page (empty when capture was off).

    Scrubbed again: a span from another producer (the contrib ``openai-v2``
    instrumentation writes the same attributes) never went through our scrubber.
    """
    return [
        {"role": t.role, "kind": t.kind, "text": scrub_text(t.text), "output": t.output, "finish": t.finish_reason}
        for t in conversation(r)
    ]


def _request_row(r: Request, s: Session, depth: int, t0: int, links: TraceLinks | None) -> dict[str, Any]:
    total = s.cost_usd
    return {
        "kind": "request",
        "depth": depth,
        "indent": min(depth, MAX_INDENT),
        "deep": depth >= MAX_INDENT,
        "start_ms": (r.start_ns - t0) / 1e6,
        "dur_ms": max(0, r.end_ns - r.start_ns) / 1e6,
        "request_id": r.request_id,
        "span_id": r.span_id,
        "name": r.name,
        "operation": r.operation,
        "model": r.model,
        "agent": r.agent_id,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        # The page shows "usage unknown", not 0/0 $0 (which would read as a free call).
        "usage_unknown": r.usage_unknown,
        "cost": "-" if r.usage_unknown else money(r.cost_usd),
        "cost_usd": r.cost_usd,
        "share": r.cost_usd / total if total > 0 else 0.0,
        "latency": duration(r.latency_s),
        "retry": r.retry_attempt,
        "stream": r.streaming,
        "incomplete": r.incomplete,
        "error": r.error and not r.policy_events,
        "http_status": r.http_status,
        "status_message": scrub_text(r.status_message),
        "policy": [{"reason": e.reason, "code": e.code, "status": e.status} for e in r.policy_events],
        "trace_url": links.url(r.trace_id) if links is not None else None,
        "attrs": _attrs(r, s),
        "conversation": conversation_rows(r),
    }


def _run_rows(run: Run, s: Session, depth: int, t0: int, links: TraceLinks | None) -> Iterator[dict[str, Any]]:
    total = s.cost_usd
    yield {
        "kind": "run",
        "depth": depth,
        # Deeper rows stop indenting (their label would leave its column) and show their depth.
        "indent": min(depth, MAX_INDENT),
        "deep": depth >= MAX_INDENT,
        "start_ms": (run.start_ns - t0) / 1e6 if run.start_ns else 0.0,
        "dur_ms": max(0, run.end_ns - run.start_ns) / 1e6,
        "run_id": run.run_id,
        "name": run.name or run.agent_id or "run",
        "agent": run.agent_id,
        "span": run.span_present,
        "requests": run.request_count,
        "tool_calls": run.tool_calls,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "cost": money(run.cost_usd),
        "share": run.cost_usd / total if total > 0 else 0.0,
        "latency": duration(run.latency_s),
    }
    for step in _steps(run.runs, run.requests, run.tools):
        if isinstance(step, Run):
            yield from _run_rows(step, s, depth + 1, t0, links)
        else:
            yield _row(step, s, depth + 1, t0, links)


def waterfall(s: Session, *, source: str, links: TraceLinks | None = None) -> dict[str, Any]:
    """The document the waterfall script draws: the session's head and one row per run and request."""
    t0 = s.start_ns
    rows: list[dict[str, Any]] = []
    for step in _steps(s.runs, s.direct_requests, s.direct_tools):
        if isinstance(step, Run):
            rows.extend(_run_rows(step, s, 0, t0, links))
        else:
            rows.append(_row(step, s, 0, t0, links))
    end = max([s.end_ns or 0, s.last_activity_ns, *(r.end_ns for r in s.requests)])
    notes = session_notes(s)
    return {
        "source": source,
        "session": {
            "session_id": s.session_id,
            "name": s.name,
            "path": s.path,
            "status": s.status,
            "started": when(s.start_ns),
            "duration": duration(s.duration_s),
            "agents": list(s.agents),
            "requests": s.request_count,
            "tool_calls": s.tool_calls,
            "user_id": s.user_id,
            "metadata": dict(s.metadata),
            "retries": s.retries,
            "errors": s.errors,
            "intercepted": s.intercepted,
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "cost": money(s.cost_usd),
            "rollup_matches": s.rollup_matches,
            "notes": notes,
        },
        "span_ms": max(0, end - t0) / 1e6 if t0 else 0.0,
        "rows": rows,
    }


# --- the list -------------------------------------------------------------------------


def list_row(s: Session) -> dict[str, Any]:
    """One session as the list shows it: the ``sessions list`` columns, formatted."""
    return {
        "session_id": s.session_id,
        "name": s.name or "",
        "path": s.path or "-",
        "status": s.status,
        "started": when(s.start_ns),
        "duration": duration(s.duration_s),
        "agents": ", ".join(s.agents) or "-",
        "runs": sum(1 for _ in s.walk_runs()),
        "requests": s.request_count,
        "retries": s.retries,
        "tokens": f"{s.input_tokens:,}/{s.output_tokens:,}",
        "cost": money(s.cost_usd),
    }


_ORDER: Final[dict[str, Callable[[Session], str]]] = {
    "session": lambda s: s.session_id,
    "path": lambda s: s.path or "",
    "status": lambda s: s.status,
}


@dataclass(slots=True)
class ListQuery:
    """The list page's filters, sort and page, read from a query string.

    Bad values are reported in :attr:`errors` (shown on the page) and ignored.
    """

    status: str = ""
    path: str = ""
    agent: str = ""
    user: str = ""
    min_cost: str = ""
    since: str = ""
    until: str = ""
    sort: str = "started"
    desc: bool = True
    #: The cost breakdown shown: a ``sessions vitals --by`` dimension.
    by: str = "agent"
    page: int = 1
    size: int = PAGE_SIZE
    errors: tuple[str, ...] = ()

    @classmethod
    def parse(cls, qs: Mapping[str, list[str]], defaults: ListQuery | None = None) -> ListQuery:
        """The query a parsed query string (``parse_qs``) asks for, over ``defaults``."""
        q = ListQuery() if defaults is None else ListQuery(**{k: getattr(defaults, k) for k in cls.__slots__})
        q.errors = ()

        def one(key: str) -> str | None:
            values = qs.get(key)
            return values[0].strip() if values else None

        for key in ("status", "path", "agent", "user", "min_cost", "since", "until"):
            v = one(key)
            if v is not None:
                setattr(q, key, v)
        errors = []
        sort = one("sort")
        if sort is not None:
            if sort in SORTS:
                q.sort = sort
            else:
                errors.append(f"unknown sort {sort!r}")
        order = one("order")
        if order is not None:
            q.desc = order != "asc"
        by = one("by")
        if by:
            try:
                q.by = check_dimension(by)
            except ValueError as exc:
                errors.append(str(exc))
        for key, lo, hi in (("page", 1, 1 << 30), ("size", 1, _MAX_PAGE_SIZE)):
            v = one(key)
            if v:
                try:
                    setattr(q, key, min(max(int(v), lo), hi))
                except ValueError:
                    errors.append(f"bad {key} {v!r}")
        if q.status and q.status not in STATUSES:
            errors.append(f"unknown status {q.status!r}")
            q.status = ""
        q.errors = tuple(errors)
        return q

    def select(self, sessions: list[Session]) -> tuple[list[Session], list[str]]:
        """The sessions matching the filters, sorted; and the problems with the filters."""
        problems = list(self.errors)
        min_cost: float | None = None
        if self.min_cost:
            try:
                min_cost = float(self.min_cost)
            except ValueError:
                problems.append(f"bad min cost {self.min_cost!r}")
        times: dict[str, int | None] = {"since": None, "until": None}
        for key in times:
            text = getattr(self, key)
            if text:
                try:
                    times[key] = parse_time(text)
                except ValueError as exc:
                    problems.append(str(exc))
        chosen = filter_sessions(
            sessions,
            since_ns=times["since"],
            until_ns=times["until"],
            agent=self.agent or None,
            path=self.path or None,
            status=self.status or None,
            min_cost=min_cost,
            user=self.user or None,
        )
        by_text = _ORDER.get(self.sort)
        if by_text is not None:
            chosen.sort(key=by_text, reverse=self.desc)
        else:
            chosen = sort_sessions(chosen, self.sort, descending=self.desc)
        return chosen, problems

    def params(self, **changes: Any) -> str:
        """This query as a query string, with ``changes``; empty values left out."""
        values: dict[str, Any] = {
            "status": self.status,
            "path": self.path,
            "agent": self.agent,
            "user": self.user,
            "min_cost": self.min_cost,
            "since": self.since,
            "until": self.until,
            "sort": self.sort,
            "order": "desc" if self.desc else "asc",
            "by": self.by if self.by != "agent" else "",
            "page": self.page,
            "size": self.size if self.size != PAGE_SIZE else "",
        }
        values.update(changes)
        if values["page"] == 1:
            values["page"] = ""
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})
