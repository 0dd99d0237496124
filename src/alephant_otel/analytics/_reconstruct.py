"""Rebuilding session → runs → requests from a stream of span records.

Spans arrive in any order and any subset: the session span may live in
another process, still be running, or be sampled out; a run span may be
missing while its requests are present. So the tree is built from ids first
(every span in a session carries ``alephant.session.id`` and, inside a run,
``alephant.run.id``; nested runs carry ``alephant.run.parent_id``) and from
parent links only where an id is missing.

:class:`SessionBuilder` is fed one record at a time and keeps only a
:class:`Request` per request span (or, for a summary, sums per run) and a few
fields per session and run, so reading a large file holds one small object
per request, not the span JSON.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from alephant_otel import _names as n
from alephant_otel.analytics._fold import fold_values, place_folds
from alephant_otel.analytics._model import (
    PolicyEvent,
    Request,
    Rollup,
    Run,
    Session,
    SessionStatus,
    SpanRecord,
    _Totals,
)
from alephant_otel.analytics._state import MAX_DEPTH, SessionState, run_of

__all__ = ["DEFAULT_ACTIVE_WINDOW_S", "SessionBuilder", "build_sessions"]

#: A session with no ended session span is "active" while its last span ended
#: less than this long ago.
DEFAULT_ACTIVE_WINDOW_S = 300.0


class SessionBuilder:
    """Collects span records and builds :class:`Session` trees from them.

    Examples:
        >>> builder = SessionBuilder()
        >>> for record in records:  # doctest: +SKIP
        ...     builder.add(record)
        >>> sessions = builder.build()  # doctest: +SKIP
    """

    def __init__(self, *, summary: bool = False) -> None:
        #: Keep totals, not requests: built sessions have runs, agents, totals and
        #: status but empty ``requests`` (see ``_fold``); for ``sessions list``.
        self.summary = summary
        self._sessions: dict[str, SessionState] = {}
        self.spans = 0
        self.ignored = 0
        #: Request spans outside any session (a gateway call made with no ``session()`` open).
        self.outside: list[Request] = []
        #: Numbers dropped as corrupt (NaN, infinite, negative, ...) from the spans taken.
        self.corrupt_values = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, rec: SpanRecord) -> None:
        """Take one span record (request spans outside any session go to :attr:`outside`, other spans are counted)."""
        self.spans += 1
        self.corrupt_values += rec.corrupt_values
        sid = rec.session_id
        if sid is None:
            # Only spans the bridge marked as requests: an SDK's own span with usage is not a gateway call.
            if rec.kind == n.SPAN_KIND_REQUEST:
                self.outside.append(Request.from_record(rec))
            else:
                self.ignored += 1
            return
        acc = self._sessions.get(sid)
        if acc is None:
            acc = self._sessions[sid] = SessionState(sid, rec.start_ns, rec.end_ns, rec.trace_id)
        else:
            if rec.start_ns and (rec.start_ns < acc.start_ns or not acc.start_ns):
                acc.start_ns = rec.start_ns
            acc.last_ns = max(acc.last_ns, rec.end_ns)
            if acc.trace_ids != rec.trace_id:
                acc.see_trace(rec.trace_id)
        kind = rec.kind
        if kind == n.SPAN_KIND_REQUEST:
            if self.summary and rec.request_id is not None:
                acc.fold_parent(rec.parent_span_id)
                fold_values(
                    acc.folds,
                    rec.span_id,
                    rec.parent_span_id,
                    rec.start_ns,
                    rec.end_ns,
                    rec.run_id,
                    rec.run_parent_id,
                    rec.agent_id,
                    rec.retry_attempt,
                    rec.error,
                    rec.intercepted or bool(rec.policy_events),
                    rec.cost_usd or 0.0,
                    rec.input_tokens or 0,
                    rec.output_tokens or 0,
                )
            else:
                acc.requests.append(Request.from_record(rec))
            if acc.path is None and rec.session_path is not None:
                acc.path = rec.session_path
            if acc.name is None and rec.session_name is not None:
                acc.name = rec.session_name
            return
        acc.add_span(rec)

    def _add_request_row(self, row: tuple[Any, ...]) -> None:
        """Take a request span as a row of ``_fastfile.rows_from_otlp``: what :meth:`add` does with its record."""
        self.spans += 1
        sid = row[1]
        start = row[8]
        end = row[9]
        if sid is None:
            self.outside.append(_request_of_row(row))
            return
        acc = self._sessions.get(sid)
        if acc is None:
            acc = self._sessions[sid] = SessionState(sid, start, end, row[4])
        else:
            if start and (start < acc.start_ns or not acc.start_ns):
                acc.start_ns = start
            acc.last_ns = max(acc.last_ns, end)
            if acc.trace_ids != row[4]:
                acc.see_trace(row[4])
        if self.summary and row[3] is not None:
            acc.fold_parent(row[6])
            fold_values(
                acc.folds,
                row[5],
                row[6],
                start,
                end,
                row[10],
                row[11],
                row[12],
                row[22],
                row[25],
                row[23],
                row[20],
                row[18],
                row[19],
            )
        else:
            acc.requests.append(_request_of_row(row))
        if acc.path is None and row[13] is not None:
            acc.path = row[13]
        if acc.name is None and row[2] is not None:
            acc.name = row[2]

    def add_all(self, records: Iterable[SpanRecord]) -> None:
        """Take every record of ``records``."""
        for rec in records:
            self.add(rec)

    def build(
        self,
        *,
        now_ns: int | None = None,
        active_window_s: float = DEFAULT_ACTIVE_WINDOW_S,
        consume: bool = False,
    ) -> list[Session]:
        """The sessions seen so far, oldest first.

        With ``consume`` the builder lets go of each session's spans once it
        is built (it is empty afterwards): a one-off read then never holds the
        spans of all sessions and all the built sessions at once.
        """
        now = time.time_ns() if now_ns is None else now_ns
        window = int(active_window_s * 1e9)
        if consume:
            accs = self._sessions
            self._sessions = {}
            sessions = []
            while accs:
                sessions.append(_build(accs.popitem()[1], now, window, self.summary))
        else:
            sessions = [_build(acc, now, window, self.summary) for acc in self._sessions.values()]
        sessions.sort(key=lambda s: (s.start_ns, s.session_id))
        return sessions


def _request_of_row(row: tuple[Any, ...]) -> Request:
    req = Request(*row[3:])
    if req.policy_events:
        req.policy_events = tuple(PolicyEvent(*p) for p in row[28])  # sent as plain tuples
    return req


def build_sessions(
    records: Iterable[SpanRecord],
    *,
    now_ns: int | None = None,
    active_window_s: float = DEFAULT_ACTIVE_WINDOW_S,
) -> list[Session]:
    """Session trees from span records, in one call.

    Args:
        records: Span records from any source, in any order.
        now_ns: "Now" for the active/completed decision (default: the clock).
        active_window_s: How recent the last activity of a session without an
            ended session span must be for it to count as active.
    """
    builder = SessionBuilder()
    builder.add_all(records)
    return builder.build(now_ns=now_ns, active_window_s=active_window_s)


# --- building one session --------------------------------------------------------


def _drop_wrappers(acc: SessionState) -> None:
    """Drop inferred requests that are another request's parent span.

    An LLM SDK's own span (``anthropic.messages.create`` from the anthropic
    SDK's built-in tracing, an OpenLLMetry or openai-v2 span) carries GenAI
    usage and, through the span processor, the session ids, so it reads as a
    request. When a request span sits right beneath it, it wraps that call
    (and its retries): counting both would count the call twice.
    """
    inferred = {r.span_id for r in acc.requests if r.request_id is None}
    if not inferred:
        return
    wrappers = {r.parent_span_id for r in acc.requests if r.parent_span_id in inferred}
    if acc.fold_parents is not None:
        wrappers.update(inferred.intersection(acc.fold_parents))
    if wrappers:
        acc.requests = [r for r in acc.requests if r.span_id not in wrappers]


def _build(acc: SessionState, now_ns: int, window_ns: int, summary: bool = False) -> Session:
    s = Session(session_id=acc.session_id, start_ns=acc.start_ns, last_activity_ns=acc.last_ns)
    s.trace_ids = [acc.trace_ids] if isinstance(acc.trace_ids, str) else list(acc.trace_ids)
    spans = acc.session_spans
    if spans is not None:
        s.span_present = True
        s.name, s.path, s.end_ns, s.rollup = spans.name, spans.path, spans.end_ns, spans.rollup
    s.name = s.name or acc.name
    s.path = s.path or acc.path

    runs: dict[str, Run] = {rid: folded_spans.run(rid) for rid, folded_spans in acc.run_spans.items()}
    # Run parents from parent links when the attribute is missing.
    for rid, folded_spans in acc.run_spans.items():
        run = runs[rid]
        if run.parent_run_id is None:
            for parent_span_id in folded_spans.parents:
                parent = run_of(acc, parent_span_id)
                if parent is not None and parent != rid:
                    run.parent_run_id = parent
                    break

    _drop_wrappers(acc)
    folded = None
    requests = acc.requests
    if summary:
        # The requests kept whole go into (copies of) the folds: a summary has no request objects.
        folded = place_folds(requests, acc.folds, runs, lambda parent: run_of(acc, parent))
        requests = []
    requests.sort(key=lambda r: (r.start_ns, r.span_id))
    for req in requests:
        req_run = req.run_id or run_of(acc, req.parent_span_id)
        if req_run is None:
            s.direct_requests.append(req)
            continue
        req.run_id = req_run
        owner = runs.get(req_run)
        if owner is None:
            owner = runs[req_run] = Run(run_id=req_run, agent_id=req.agent_id, parent_run_id=req.run_parent_id)
        if owner.parent_run_id is None and req.run_parent_id is not None and req.run_parent_id != req_run:
            owner.parent_run_id = req.run_parent_id
        if owner.agent_id is None:
            owner.agent_id = req.agent_id
        elif req.agent_id is None:
            req.agent_id = owner.agent_id
        if not owner.span_present:
            if not owner.start_ns or req.start_ns < owner.start_ns:
                owner.start_ns = req.start_ns
            owner.end_ns = max(owner.end_ns, req.end_ns)
        owner.requests.append(req)
    s.requests = requests
    _place_tools(acc, s, runs)

    # Parents named by a child but never seen get a placeholder run.
    for child in list(runs.values()):
        pid = child.parent_run_id
        if pid is not None and pid not in runs:
            runs[pid] = Run(run_id=pid, start_ns=child.start_ns, end_ns=child.end_ns)
    for child in runs.values():
        parent_run = runs.get(child.parent_run_id) if child.parent_run_id is not None else None
        if parent_run is not None and not _is_ancestor(runs, child, parent_run):
            parent_run.runs.append(child)
        else:
            s.runs.append(child)
    for run in runs.values():
        run.runs.sort(key=lambda r: (r.start_ns, r.run_id))
    s.runs.sort(key=lambda r: (r.start_ns, r.run_id))
    for run in s.runs:
        _total(run, None if folded is None else folded.runs)
        if run.start_ns and (not s.start_ns or run.start_ns < s.start_ns):
            s.start_ns = run.start_ns

    totals = _Totals()
    for req in s.requests:
        totals.add(req)
    if folded is not None:
        totals = folded.session
    if not totals.requests and not s.tools and s.rollup is not None:
        totals = _from_rollup(s.rollup)
        s.totals_from_rollup = True
    for step in s.tools:
        totals.add_tool(step.cost_usd)
    s._totals = totals
    if spans is not None and spans.metadata:
        s.metadata = dict(spans.metadata)
    elif acc.metadata:
        s.metadata = acc.metadata
    s.user_id = acc.user_id

    agents: dict[str, None] = {}
    for run in s.walk_runs():
        if run.agent_id:
            agents[run.agent_id] = None
    for req in s.requests:
        if req.agent_id:
            agents[req.agent_id] = None
    if folded is not None:
        for agent in sorted(folded.agents, key=folded.agents.__getitem__):
            agents[agent] = None
    s.agents = list(agents)
    s.status = _status(s, now_ns, window_ns)
    return s


def _place_tools(acc: SessionState, s: Session, runs: dict[str, Run]) -> None:
    """Put each tool call in its run (by its run id, else up its parent spans), in start order."""
    if not acc.tools:
        return
    steps = sorted(acc.tools, key=lambda t: (t.start_ns, t.span_id))
    s.tools = steps
    for step in steps:
        rid = step.run_id or run_of(acc, step.parent_span_id)
        if rid is None:
            s.direct_tools.append(step)
            continue
        owner = runs.get(rid)
        if owner is None:
            owner = runs[rid] = Run(run_id=rid, agent_id=step.agent_id, start_ns=step.start_ns, end_ns=step.end_ns)
        owner.tools.append(step)


def _is_ancestor(runs: dict[str, Run], run: Run, candidate: Run) -> bool:
    """Whether attaching ``run`` under ``candidate`` would close a cycle."""
    seen = 0
    node: Run | None = candidate
    while node is not None and seen < MAX_DEPTH:
        if node is run:
            return True
        node = runs.get(node.parent_run_id) if node.parent_run_id is not None else None
        seen += 1
    return seen >= MAX_DEPTH


def _total(run: Run, folded: dict[str, _Totals] | None, depth: int = 0) -> _Totals:
    t = _Totals()
    for req in run.requests:
        t.add(req)
    for step in run.tools:
        t.add_tool(step.cost_usd)
    own = None if folded is None else folded.get(run.run_id)
    if own is not None:
        t.merge(own)
    if depth < MAX_DEPTH:
        for child in run.runs:
            t.merge(_total(child, folded, depth + 1))
    if not run.requests and own is None and not run.runs and not run.tools and run.rollup is not None:
        t = _from_rollup(run.rollup)
    if not run.span_present:
        # No span to time the run: it spans everything seen inside it.
        for child in run.runs:
            if child.start_ns and (not run.start_ns or child.start_ns < run.start_ns):
                run.start_ns = child.start_ns
            run.end_ns = max(run.end_ns, child.end_ns)
    run._totals = t
    return t


def _from_rollup(r: Rollup) -> _Totals:
    return _Totals(
        requests=r.requests,
        retries=r.retries,
        intercepted=r.intercepted,
        cost_usd=r.cost_usd,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
    )


def _status(s: Session, now_ns: int, window_ns: int) -> SessionStatus:
    if s.intercepted or any(r.policy_events for r in s.requests):
        return "intercepted"
    if not s.span_present and now_ns - s.last_activity_ns < window_ns:
        return "active"
    return "completed"
